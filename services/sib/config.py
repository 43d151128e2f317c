"""SIB settings (prefix SCFED_SIB_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

# The module, not the class: a service config module holds exactly one settings class.
from ..biometrics import config
from ..federation import Agency

PROFILE = Agency.SIB.profile


class SibSettings(config.MatchSettings):
    """Settings of the SIB service."""

    model_config = SettingsConfigDict(env_prefix=PROFILE.env_prefix, extra="ignore")
    service_name: ClassVar[str] = PROFILE.agency

    grpc_port: int = Field(default=PROFILE.grpc_port, ge=0, le=65535)
    http_port: int = Field(default=PROFILE.http_port, ge=0, le=65535)
    cjis_iafis_addr: str = Agency.CJIS_IAFIS.profile.default_address
    ice_field_addr: str = Agency.ICE_FIELD.profile.default_address
    # LEA credentials at the agency edge (credentials.py): "required" refuses a booking, a
    # booking read, an inbox read or a release notice without an LEA's API key (401) and
    # confines each LEA to its own ORI (403, or 404 for another's booking), the default;
    # "off" takes the ORI a request names on trust.
    lea_credentials: Literal["required", "off"] = "required"
