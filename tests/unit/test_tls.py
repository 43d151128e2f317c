"""The federation's certificates: a CA whose leaves verify, each naming its agency, keys kept
private, and nothing replaced unless asked."""

from __future__ import annotations

import ipaddress
import json
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store
from typer.testing import CliRunner

from services.cli.endpoints import operator_channels
from services.cli.main import app
from services.federation import Agency
from services.runtime.config import ServiceSettings
from services.runtime.tls import (
    CA_NAME,
    IDENTITIES,
    OPERATOR,
    OPERATOR_TOKEN,
    OPERATOR_TOKEN_HASH,
    CertificateMissing,
    CertificatesExist,
    SecureChannels,
    certificate_path,
    describe_certificates,
    init_certificates,
    insecure_channels,
    key_path,
    operator_token,
    operator_token_hash,
    server_credentials,
    spiffe_id,
    token_hash,
    write_operator_token,
)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One certificate directory for the module (making it costs a few key generations)."""
    directory = tmp_path_factory.mktemp("certs")
    init_certificates(directory, days=30)
    return directory


def _load(directory: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(certificate_path(directory, name).read_bytes())


def test_the_layout_has_the_ca_every_agency_and_the_operator(cert_dir: Path) -> None:
    names = {path.name for path in cert_dir.iterdir()}
    expected = {f"{name}.{suffix}" for name in (CA_NAME, *IDENTITIES) for suffix in ("pem", "key")}
    assert names == expected | {OPERATOR_TOKEN, OPERATOR_TOKEN_HASH}
    assert set(IDENTITIES) == {*map(str, Agency), OPERATOR}


def test_the_operator_token_is_private_and_its_hash_is_what_a_service_checks(
    cert_dir: Path, tmp_path: Path
) -> None:
    token = operator_token(cert_dir)
    assert token.startswith("scfed_op_") and len(token) > 40
    assert stat.S_IMODE((cert_dir / OPERATOR_TOKEN).stat().st_mode) == 0o600
    assert operator_token_hash(cert_dir) == token_hash(token)
    # Without the hash file, the token beside it gives the hash; without either, None.
    only_token = tmp_path / "only-token"
    only_token.mkdir()
    (only_token / OPERATOR_TOKEN).write_text(token + "\n")
    assert operator_token_hash(only_token) == token_hash(token)
    assert operator_token_hash(tmp_path / "empty") is None
    # A new token replaces the old one, and its hash with it.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_operator_token(fresh)
    assert operator_token(fresh) != token
    assert operator_token_hash(fresh) == token_hash(operator_token(fresh))


@pytest.mark.parametrize("given", ["abc", "g" * 64, "0" * 63])
def test_an_operator_token_hash_setting_must_be_a_sha256(given: str) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        ServiceSettings(operator_token_sha256=given)
    assert ServiceSettings(operator_token_sha256=" " + "AB" * 32 + "\n").operator_token_sha256 == (
        "ab" * 32
    )


def test_the_ca_may_sign_certificates_and_nothing_else(cert_dir: Path) -> None:
    ca = _load(cert_dir, CA_NAME)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert not usage.digital_signature


@pytest.mark.parametrize("name", IDENTITIES)
def test_each_leaf_verifies_against_the_ca_as_server_and_client(cert_dir: Path, name: str) -> None:
    store = Store([_load(cert_dir, CA_NAME)])
    leaf = _load(cert_dir, name)
    builder = PolicyBuilder().store(store)
    server_chain = builder.build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])
    assert server_chain[-1] == _load(cert_dir, CA_NAME)
    builder.build_client_verifier().verify(leaf, [])
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_a_leaf_names_its_agency_and_the_names_it_is_dialled_by(cert_dir: Path) -> None:
    san = _load(cert_dir, Agency.CJIS_IAFIS).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://scfed/cjis_iafis"
    ]
    assert set(san.value.get_values_for_type(x509.DNSName)) == {
        "cjis_iafis",
        "cjis-iafis",
        "localhost",
    }
    assert set(san.value.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }


def test_the_standard_library_loads_the_chain(cert_dir: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cert_dir / "ca.pem")
    context.load_cert_chain(certificate_path(cert_dir, "sib"), key_path(cert_dir, "sib"))


def test_keys_are_readable_by_their_owner_only(cert_dir: Path) -> None:
    for name in (CA_NAME, *IDENTITIES):
        assert stat.S_IMODE(key_path(cert_dir, name).stat().st_mode) == 0o600
        assert stat.S_IMODE(certificate_path(cert_dir, name).stat().st_mode) == 0o644


def test_existing_certificates_are_kept_unless_forced(tmp_path: Path) -> None:
    init_certificates(tmp_path, days=1)
    before = certificate_path(tmp_path, CA_NAME).read_bytes()
    with pytest.raises(CertificatesExist, match="--force"):
        init_certificates(tmp_path, days=1)
    assert certificate_path(tmp_path, CA_NAME).read_bytes() == before
    init_certificates(tmp_path, days=1, force=True)
    assert certificate_path(tmp_path, CA_NAME).read_bytes() != before


def test_a_missing_file_is_named_with_the_two_ways_out(tmp_path: Path) -> None:
    with pytest.raises(CertificateMissing) as missing:
        server_credentials(tmp_path, Agency.SIB)
    message = str(missing.value)
    assert str(tmp_path / "sib.key") in message
    assert f"scfed certs init --dir {tmp_path}" in message
    assert "SCFED_TLS=off" in message


def test_describe_lists_identity_names_and_expiry(cert_dir: Path) -> None:
    found = {info.name: info for info in describe_certificates(cert_dir)}
    assert list(found) == [CA_NAME, *IDENTITIES]
    assert found[OPERATOR].identity == spiffe_id(OPERATOR)
    assert "localhost" in found["lesc"].alternative_names
    assert found[CA_NAME].not_after > _load(cert_dir, CA_NAME).not_valid_before_utc


def test_settings_default_to_mutual_tls_with_certs_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCFED_TLS", raising=False)
    monkeypatch.delenv("SCFED_TLS_DIR", raising=False)
    settings = ServiceSettings(data_dir=Path("/srv/scfed"))
    assert settings.tls == "on"
    assert settings.resolved_tls_dir() == Path("/srv/scfed/certs")
    monkeypatch.setenv("SCFED_TLS", "OFF")
    monkeypatch.setenv("SCFED_TLS_DIR", "/etc/scfed/certs")
    settings = ServiceSettings()
    assert settings.tls == "off"
    assert settings.resolved_tls_dir() == Path("/etc/scfed/certs")


def test_scfed_certs_init_writes_the_directory_and_refuses_a_second_time(tmp_path: Path) -> None:
    # Longer than the 80 columns a console has when it is not a terminal: printed whole.
    directory = tmp_path / ("d" * 90) / "certs"
    first = CliRunner().invoke(app, ["certs", "init", "--dir", str(directory), "--days", "2"])
    assert first.exit_code == 0, first.output
    assert str(key_path(directory, OPERATOR)) in first.stdout.splitlines()
    again = CliRunner().invoke(app, ["certs", "init", "--dir", str(directory)])
    assert again.exit_code == 1
    assert "--force" in again.stderr
    forced = CliRunner().invoke(app, ["certs", "init", "--dir", str(directory), "--force"])
    assert forced.exit_code == 0, forced.output


def test_scfed_certs_show_lists_every_identity(cert_dir: Path) -> None:
    shown = CliRunner().invoke(app, ["certs", "show", "--dir", str(cert_dir), "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [row["identity"] for row in rows[1:]] == [spiffe_id(name) for name in IDENTITIES]
    assert "cjis-iafis" in rows[2]["alternative_names"]


def test_scfed_certs_show_says_when_there_are_none(tmp_path: Path) -> None:
    shown = CliRunner().invoke(app, ["certs", "show", "--dir", str(tmp_path)])
    assert shown.exit_code == 1
    assert "no certificates in" in shown.stderr


def test_the_operators_commands_dial_as_the_environment_says(
    cert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCFED_TLS", "off")
    assert operator_channels() is insecure_channels
    monkeypatch.delenv("SCFED_TLS")
    monkeypatch.setenv("SCFED_TLS_DIR", str(cert_dir))
    assert isinstance(operator_channels(), SecureChannels)
    monkeypatch.setenv("SCFED_TLS_DIR", str(tmp_path / "none"))
    with pytest.raises(CertificateMissing, match="is missing: run"):
        operator_channels()
