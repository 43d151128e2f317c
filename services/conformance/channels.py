"""How the kit dials the target: plaintext, or mutual TLS presenting the certificate of the
identity each call comes from in the federation.

With TLS, a call is made as the identity the authorization table (runtime/authorization.py)
admits for its method: administration and seeding as the operator, a delivery as the agency
whose outbox sends it (the route's sender in runtime/message_routes.py). The kit holds one
channel per identity it has called as, all to the same target. The fake peers serve with their
own agency's certificate, so the target's outbox reaches them as it would the real agencies.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from ..federation import Agency
from ..runtime.authorization import allowed_callers
from ..runtime.tls import (
    CA_NAME,
    IDENTITIES,
    OPERATOR,
    TARGET_NAME_OPTION,
    CertificateMissing,
    SecureChannels,
    certificate_path,
    key_path,
    server_credentials,
    target_name,
)


def caller_of(method: str) -> str:
    """The identity the federation calls `method` (a full path) as: the operator when the table
    admits it (administration), else the delivery's sender."""
    callers = allowed_callers(method)
    if OPERATOR in callers or not callers:
        return OPERATOR
    return sorted(callers)[0]


def check_certificates(directory: Path) -> None:
    """Raises CertificateMissing naming the first file the kit needs that is not in
    `directory` (the CA, and every identity's certificate and key)."""
    needed = [certificate_path(directory, CA_NAME)] + [
        path
        for name in IDENTITIES
        for path in (certificate_path(directory, name), key_path(directory, name))
    ]
    for path in needed:
        if not path.exists():
            raise CertificateMissing(
                f"TLS is on but {path} is missing: run `scfed certs init --dir {directory}` "
                "(and give the server under test ca.pem and its agency's certificate and key "
                "from there), or pass --no-tls"
            )


class Dialer:
    """The kit's channels to one target: one plaintext channel, or with `tls_dir` one
    mutual-TLS channel per identity, opened when first used."""

    def __init__(self, agency: Agency, target: str, tls_dir: Path | None) -> None:
        if tls_dir is not None:
            check_certificates(tls_dir)
        self.agency = agency
        self.target = target
        self.tls_dir = tls_dir
        self._channels: dict[str, grpc.aio.Channel] = {}

    @property
    def tls(self) -> bool:
        """True when the kit dials with mutual TLS."""
        return self.tls_dir is not None

    def channel(self, identity: str = OPERATOR) -> grpc.aio.Channel:
        """The channel presenting `identity`'s certificate (the one plaintext channel when TLS
        is off)."""
        key = identity if self.tls_dir is not None else ""
        if key not in self._channels:
            if self.tls_dir is None:
                self._channels[key] = grpc.aio.insecure_channel(self.target)
            else:
                channels = SecureChannels.of(self.tls_dir, identity)
                self._channels[key] = channels(self.agency, self.target)
        return self._channels[key]

    def for_method(self, method: str) -> grpc.aio.Channel:
        """The channel to call `method` (a full path) on, as the federation would."""
        return self.channel(caller_of(method))

    def without_certificate(self) -> grpc.aio.Channel:
        """A TLS channel that trusts the federation's CA but presents no certificate (the
        caller closes it)."""
        if self.tls_dir is None:
            raise ValueError("the kit dials in plaintext: there is no certificate to leave out")
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certificate_path(self.tls_dir, CA_NAME).read_bytes()
        )
        return grpc.aio.secure_channel(
            self.target, credentials, options=[(TARGET_NAME_OPTION, target_name(self.agency))]
        )

    async def close(self) -> None:
        """Closes every channel opened."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


def peer_credentials(tls_dir: Path | None, peer: Agency) -> grpc.ServerCredentials | None:
    """What a fake peer binds with: its agency's certificate with TLS, nothing in plaintext."""
    return None if tls_dir is None else server_credentials(tls_dir, str(peer))
