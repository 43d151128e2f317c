"""Mutual TLS on the gRPC hops: a local certificate authority, one certificate per agency and
one for the operator, and the gRPC credentials built from them.

The certificate directory holds, side by side::

    ca.pem  ca.key                  the federation's own certificate authority
    <agency>.pem  <agency>.key      one per agency (sib, cjis_iafis, ident, lesc, ice_field)
    operator.pem  operator.key      the operator's tools (seeding, `scfed` commands)

Keys are written 0600, certificates 0644. Every leaf certificate names its holder once, as a
SPIFFE ID in a URI SAN, ``spiffe://scfed/<name>`` (the trust domain is ``scfed``; the path is
the agency's registry name, or ``operator``), and is valid as both server and client. It also
carries the DNS names a peer may dial it by (the registry name, its hyphenated Kubernetes
Service name, ``localhost``) and the loopback IPs. A sender verifies its peer against the
peer's hyphenated name (`target_name`) whatever address it dials, so loopback ports and
Kubernetes DNS names verify alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..federation import Agency

TRUST_DOMAIN: Final = "scfed"
SPIFFE_PREFIX: Final = f"spiffe://{TRUST_DOMAIN}/"
OPERATOR: Final = "operator"
CA_NAME: Final = "ca"
# Every identity that gets a certificate, in the order `init_certificates` writes them.
IDENTITIES: Final[tuple[str, ...]] = (*(str(agency) for agency in Agency), OPERATOR)
DEFAULT_DAYS: Final = 365
_LOOPBACK_IPS: Final = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
# The option that makes gRPC check the peer's certificate against a name other than the host
# it dials (127.0.0.1:port, a Kubernetes DNS name).
TARGET_NAME_OPTION: Final = "grpc.ssl_target_name_override"


# The operator's credential on the HTTP edges' operator routes (reset, snapshots, clocks,
# faults, dead-letter requeue), which TLS does not cover: a random token the operator's tools
# send as `Authorization: Bearer`, and its SHA-256, all a service needs to check it.
OPERATOR_TOKEN: Final = "operator.token"
OPERATOR_TOKEN_HASH: Final = "operator.token.sha256"
OPERATOR_TOKEN_PREFIX: Final = "scfed_op_"


class CertificatesExist(FileExistsError):
    """The directory already holds certificates and the caller did not ask to replace them."""


class CertificateMissing(FileNotFoundError):
    """A certificate or key a service needs is not where its settings say."""


def certificate_path(directory: Path, name: str) -> Path:
    """Where the certificate of `name` (an identity, or ``ca``) lives."""
    return directory / f"{name}.pem"


def key_path(directory: Path, name: str) -> Path:
    """Where the private key of `name` (an identity, or ``ca``) lives."""
    return directory / f"{name}.key"


def spiffe_id(name: str) -> str:
    """The identity URI a certificate of `name` carries, e.g. ``spiffe://scfed/sib``."""
    return f"{SPIFFE_PREFIX}{name}"


def target_name(name: str) -> str:
    """The DNS name a peer's certificate is verified against: the hyphenated form, which is
    also the agency's Kubernetes Service name (``cjis-iafis``)."""
    return name.replace("_", "-")


def _dns_names(name: str) -> list[str]:
    """The DNS SANs of `name`'s certificate, without repeats."""
    return list(dict.fromkeys([name, target_name(name), "localhost"]))


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scfed federation"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    # Backdated a little so that a peer whose clock runs slightly behind accepts it.
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
        now + dt.timedelta(days=days)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """What a key may do: sign certificates and CRLs (the CA), or sign and agree keys in a TLS
    handshake (a leaf), never both."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signs_certificates,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _authority(days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new self-signed certificate authority: CA=true, signs certificates only."""
    key = _new_key()
    name = _subject("scfed federation CA")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder, days).sign(key, hashes.SHA256())


def _leaf(
    name: str, days: int, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new certificate for `name`, signed by the CA, good as TLS server and client."""
    key = _new_key()
    alternative_names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(spiffe_id(name)),
        *(x509.DNSName(dns) for dns in _dns_names(name)),
        *(x509.IPAddress(ip) for ip in _LOOPBACK_IPS),
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return key, _validity(builder, days).sign(ca_key, hashes.SHA256())


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Writes `data` to `path` with `mode`, never readable by others even for an instant."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    # O_CREAT's mode applies only to a new file; a replaced one keeps its old mode otherwise.
    os.chmod(path, mode)


def _write_pair(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> list[Path]:
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_file(key_path(directory, name), key_bytes, 0o600)
    write_file(
        certificate_path(directory, name), cert.public_bytes(serialization.Encoding.PEM), 0o644
    )
    return [certificate_path(directory, name), key_path(directory, name)]


def init_certificates(
    directory: Path, *, days: int = DEFAULT_DAYS, force: bool = False
) -> list[Path]:
    """Makes a new CA and one certificate per identity in `directory`; returns the files written.

    Raises CertificatesExist, naming the files, when any is already there and `force` is off.
    """
    if days < 1:
        raise ValueError(f"certificates must be valid for at least one day, got {days}")
    names = (CA_NAME, *IDENTITIES)
    existing = [
        path
        for name in names
        for path in (certificate_path(directory, name), key_path(directory, name))
        if path.exists()
    ]
    if existing and not force:
        shown = ", ".join(path.name for path in existing[:4])
        more = f" and {len(existing) - 4} more" if len(existing) > 4 else ""
        raise CertificatesExist(
            f"{directory} already holds certificates ({shown}{more}); "
            "pass --force to replace them all"
        )
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _authority(days)
    written = _write_pair(directory, CA_NAME, ca_key, ca_cert)
    for name in IDENTITIES:
        written += _write_pair(directory, name, *_leaf(name, days, ca_key, ca_cert))
    return written + write_operator_token(directory)


def write_operator_token(directory: Path) -> list[Path]:
    """A new operator token in `directory` (0600) with its SHA-256 beside it (0644), replacing
    any earlier one; returns the two files."""
    token = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
    write_file(directory / OPERATOR_TOKEN, token.encode() + b"\n", 0o600)
    write_file(directory / OPERATOR_TOKEN_HASH, token_hash(token).encode() + b"\n", 0o644)
    return [directory / OPERATOR_TOKEN, directory / OPERATOR_TOKEN_HASH]


def token_hash(token: str) -> str:
    """The SHA-256 of an operator token, hex, as stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def operator_token(directory: Path) -> str:
    """The operator's token from `directory` (CertificateMissing naming the file and the way
    out when it is not there)."""
    return _read(directory / OPERATOR_TOKEN).decode().strip()


def operator_token_hash(directory: Path) -> str | None:
    """The SHA-256 a service checks the operator's token against: the hash file, else the hash
    of the token file beside it; None when `directory` holds neither."""
    stored = directory / OPERATOR_TOKEN_HASH
    if stored.exists():
        return stored.read_text().strip()
    if (directory / OPERATOR_TOKEN).exists():
        return token_hash(operator_token(directory))
    return None


def _read(path: Path) -> bytes:
    """The file's bytes, or one clear error naming it and the two ways out."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateMissing(
            f"TLS is on but {path} is missing: run `scfed certs init --dir {path.parent}` "
            "or set SCFED_TLS=off"
        ) from None


def server_credentials(directory: Path, name: str) -> grpc.ServerCredentials:
    """The credentials `name`'s gRPC server binds with: its own certificate, and only clients
    with a certificate from the federation's CA admitted."""
    return grpc.ssl_server_credentials(
        [(_read(key_path(directory, name)), _read(certificate_path(directory, name)))],
        root_certificates=_read(certificate_path(directory, CA_NAME)),
        require_client_auth=True,
    )


def channel_credentials(directory: Path, name: str) -> grpc.ChannelCredentials:
    """The credentials `name` dials its peers with: its own certificate as client certificate,
    and the federation's CA as the only root it trusts."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(certificate_path(directory, CA_NAME)),
        private_key=_read(key_path(directory, name)),
        certificate_chain=_read(certificate_path(directory, name)),
    )


ChannelOptions = Sequence[tuple[str, Any]]


class ChannelFactory(Protocol):
    """Opens the channel to `peer` (an agency's name) at `address`."""

    def __call__(self, peer: str, address: str, options: ChannelOptions = ()) -> grpc.aio.Channel:
        """A new channel to `peer` at `address`."""
        ...


def insecure_channels(peer: str, address: str, options: ChannelOptions = ()) -> grpc.aio.Channel:
    """A plaintext channel (TLS off)."""
    return grpc.aio.insecure_channel(address, options=list(options))


@dataclass(frozen=True)
class SecureChannels:
    """Opens mutual-TLS channels with one identity's credentials, each checking that the peer
    holds the certificate of the agency it is meant to be."""

    credentials: grpc.ChannelCredentials

    @classmethod
    def of(cls, directory: Path, name: str) -> SecureChannels:
        """Channels that present `name`'s certificate from `directory`."""
        return cls(channel_credentials(directory, name))

    def __call__(self, peer: str, address: str, options: ChannelOptions = ()) -> grpc.aio.Channel:
        """A new mutual-TLS channel to `peer` at `address`."""
        return grpc.aio.secure_channel(
            address,
            self.credentials,
            options=[*options, (TARGET_NAME_OPTION, target_name(peer))],
        )

    def blocking(self, peer: str, address: str) -> grpc.Channel:
        """The same channel for synchronous (non-asyncio) stubs."""
        return grpc.secure_channel(
            address, self.credentials, options=[(TARGET_NAME_OPTION, target_name(peer))]
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def peer_identity(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The calling identity's name (``sib``, ``operator``) from its client certificate: the
    path of its ``spiffe://scfed/`` URI SAN, else its common name; None over plaintext."""
    auth = context.auth_context()
    for value in auth.get("x509_subject_alternative_name", []):
        text = _text(value)
        if text.startswith(SPIFFE_PREFIX):
            return text.removeprefix(SPIFFE_PREFIX)
    names = auth.get("x509_common_name", [])
    return _text(names[0]) if names else None


@dataclass(frozen=True)
class CertificateInfo:
    """What `scfed certs show` tells about one certificate."""

    name: str
    identity: str
    alternative_names: list[str]
    not_after: dt.datetime


def describe_certificates(directory: Path) -> list[CertificateInfo]:
    """The CA's and every identity's certificate found in `directory`, in layout order."""
    found = []
    for name in (CA_NAME, *IDENTITIES):
        path = certificate_path(directory, name)
        if not path.exists():
            continue
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            alternative_names = [str(entry.value) for entry in san]
        except x509.ExtensionNotFound:
            alternative_names = []
        uris = [entry for entry in alternative_names if entry.startswith(SPIFFE_PREFIX)]
        identity = uris[0] if uris else cert.subject.rfc4514_string()
        found.append(CertificateInfo(name, identity, alternative_names, cert.not_valid_after_utc))
    return found
