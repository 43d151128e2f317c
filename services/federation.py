"""The federation's agencies, each named once: its settings, provider, ports and identifiers.

Everything else that needs "the five agencies" (the launcher, the CLI, the tests, the settings
classes' defaults) reads this table. The settings class and the provider are import paths,
resolved on first use, so importing the registry imports nothing heavier than the standard
library: the CLI reads it without loading gRPC, SQLAlchemy or numpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .runtime.config import ServiceSettings
    from .runtime.server import ServiceProvider

# The import package the services live in: "services" in a checkout, "scfed.services" once
# installed (pyproject.toml maps the folder there so that the wheel owns no top-level name
# but its own). Code inside the package imports relatively and works under either.
PACKAGE: Final = __name__.rpartition(".")[0]
FEDERATION_PREFIX: Final = "SCFED_"
LOOPBACK: Final = "127.0.0.1"


class Agency(StrEnum):
    """One agency of the federation; its value is the service's package and journal name."""

    SIB = "sib"
    CJIS_IAFIS = "cjis_iafis"
    IDENT = "ident"
    LESC = "lesc"
    ICE_FIELD = "ice_field"

    @property
    def profile(self) -> AgencyProfile:
        """This agency's entry in the registry."""
        return PROFILES[self]

    @property
    def ori(self) -> str:
        """The ORI this agency signs and is addressed by (DAI) in envelopes.

        Only the national agencies have one: each SIB and field office has its own per state
        or area of responsibility.
        """
        ori = self.profile.ori
        if ori is None:
            raise LookupError(f"{self} has no single ORI (one per state or field office)")
        return ori


@dataclass(frozen=True)
class AgencyProfile:
    """What the federation knows about one agency before anything of it is imported."""

    agency: Agency
    # "module:attribute" paths, imported on first use.
    settings_path: str
    provider_path: str
    grpc_port: int
    http_port: int
    # Synthetic, except LESC's published ORI; None where the agency has one per state or office.
    ori: str | None = None
    # Agencies whose people work on agency time (LESC's analysts, the field offices' cases):
    # a local federation may run their clocks faster than the wall clock.
    works_on_agency_time: bool = False

    @property
    def env_prefix(self) -> str:
        """Prefix of this agency's own environment variables, e.g. ``SCFED_SIB_``."""
        return f"{FEDERATION_PREFIX}{self.agency.upper()}_"

    @property
    def address_variable(self) -> str:
        """The variable that gives every peer this agency's gRPC address(es)."""
        return f"{self.env_prefix}ADDR"

    @property
    def default_address(self) -> str:
        """host:port of this agency's gRPC server on loopback at the default port."""
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def module(self) -> str:
        """The package run as ``python -m <module>``."""
        return f"{PACKAGE}.{self.agency}"

    def settings_class(self) -> type[ServiceSettings]:
        """The agency's settings class (imports its config module)."""
        settings: type[ServiceSettings] = _resolve(self.settings_path)
        return settings

    def provider_class(self) -> Callable[[Any], ServiceProvider]:
        """The agency's provider, built from its settings (imports the whole service)."""
        provider: Callable[[Any], ServiceProvider] = _resolve(self.provider_path)
        return provider


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


PROFILES: Final[dict[Agency, AgencyProfile]] = {
    profile.agency: profile
    for profile in (
        AgencyProfile(
            Agency.SIB,
            settings_path=f"{PACKAGE}.sib.config:SibSettings",
            provider_path=f"{PACKAGE}.sib.provider:SibProvider",
            grpc_port=50051,
            http_port=8081,
        ),
        AgencyProfile(
            Agency.CJIS_IAFIS,
            settings_path=f"{PACKAGE}.cjis_iafis.config:CjisSettings",
            provider_path=f"{PACKAGE}.cjis_iafis.provider:CjisProvider",
            grpc_port=50052,
            http_port=8082,
            ori="WVFBI0000",
        ),
        AgencyProfile(
            Agency.IDENT,
            settings_path=f"{PACKAGE}.ident.config:IdentSettings",
            provider_path=f"{PACKAGE}.ident.provider:IdentProvider",
            grpc_port=50053,
            http_port=8083,
            ori="DCDHS0000",
        ),
        AgencyProfile(
            Agency.LESC,
            settings_path=f"{PACKAGE}.lesc.config:LescSettings",
            provider_path=f"{PACKAGE}.lesc.provider:LescProvider",
            grpc_port=50054,
            http_port=8084,
            ori="VTICE0900",
            works_on_agency_time=True,
        ),
        AgencyProfile(
            Agency.ICE_FIELD,
            settings_path=f"{PACKAGE}.ice_field.config:IceFieldSettings",
            provider_path=f"{PACKAGE}.ice_field.provider:IceFieldProvider",
            grpc_port=50055,
            http_port=8085,
            works_on_agency_time=True,
        ),
    )
}


def parse_agency(name: str) -> Agency:
    """An agency from a name as a person types it (``cjis-iafis`` or ``cjis_iafis``).

    Raises ValueError naming the agencies when `name` is none of them.
    """
    try:
        return Agency(name.strip().replace("-", "_"))
    except ValueError:
        raise ValueError(f"unknown agency {name!r}; one of {', '.join(Agency)}") from None
