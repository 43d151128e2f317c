"""Where a running federation answers, as the CLI and the pytest plugin find it: each
service's environment (SCFED_<SERVICE>_ADDR, its host and port settings) or NAME=VALUE items."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..federation import Agency, parse_agency

if TYPE_CHECKING:
    from ..runtime.tls import ChannelFactory


def grpc_addresses() -> dict[str, str]:
    """gRPC addresses of a running federation: SCFED_<SERVICE>_ADDR, else each service's
    own host and port settings (SCFED_<SERVICE>_GRPC_PORT, default 50051..50055)."""
    addresses: dict[str, str] = {}
    for agency in Agency:
        explicit = os.environ.get(agency.profile.address_variable)
        if explicit:
            addresses[agency] = explicit
        else:
            settings = agency.profile.settings_class()()
            addresses[agency] = f"{settings.grpc_host}:{settings.grpc_port}"
    return addresses


def operator_channels() -> ChannelFactory:
    """How the operator's commands dial the services' gRPC edges, read from the environment as
    the services read it: with the operator's certificate when SCFED_TLS=on (in SCFED_TLS_DIR,
    else <SCFED_DATA_DIR>/certs), plaintext otherwise."""
    from ..runtime.config import ServiceSettings
    from ..runtime.tls import OPERATOR, SecureChannels, insecure_channels

    settings = ServiceSettings()
    if settings.tls == "off":
        return insecure_channels
    return SecureChannels.of(settings.resolved_tls_dir(), OPERATOR)


def operator_headers() -> dict[str, str]:
    """What the operator's commands send to the HTTP edges' operator routes (reset, snapshots,
    clocks, faults), read from the environment as the services read it: the operator's token
    from SCFED_TLS_DIR (else <SCFED_DATA_DIR>/certs) when TLS is on and the token is there;
    nothing otherwise, and a service that needs it answers 401 saying so."""
    from ..runtime.config import ServiceSettings

    settings = ServiceSettings()
    return tls_operator_headers(settings.resolved_tls_dir() if settings.tls == "on" else None)


def tls_operator_headers(tls_dir: Path | None) -> dict[str, str]:
    """The operator's token header from `tls_dir` (None: TLS off), or none when no token is
    there."""
    from ..runtime.tls import OPERATOR_TOKEN, operator_token

    if tls_dir is None or not (tls_dir / OPERATOR_TOKEN).exists():
        return {}
    return {"Authorization": f"Bearer {operator_token(tls_dir)}"}


def http_urls() -> dict[str, str]:
    """HTTP edges of a running federation: each service's SCFED_<SERVICE>_HTTP_HOST and
    SCFED_<SERVICE>_HTTP_PORT (default 8081..8085)."""
    urls: dict[str, str] = {}
    for agency in Agency:
        settings = agency.profile.settings_class()()
        host = (
            "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "[::]") else settings.http_host
        )
        urls[agency] = f"http://{host}:{settings.http_port}"
    return urls


def is_host_port(value: str) -> bool:
    """True for host:port."""
    host, colon, port = value.rpartition(":")
    return bool(colon and host and port.isdigit())


def is_http_url(value: str) -> bool:
    """True for an http:// or https:// URL."""
    return value.startswith(("http://", "https://"))


def agency_item(item: str, form: str, valid: Callable[[str], bool]) -> tuple[Agency, str]:
    """An item's NAME=VALUE, NAME an agency and VALUE valid; ValueError naming `form`."""
    name, sep, value = item.partition("=")
    try:
        agency: Agency | None = parse_agency(name)
    except ValueError:
        agency = None
    if agency is None or not sep or not valid(value):
        raise ValueError(f"expected {form} with NAME one of {', '.join(Agency)}, got {item!r}")
    return agency, value
