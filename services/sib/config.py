"""SIB settings (prefix SCFED_SIB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

# The module, not the class: a service config module holds exactly one settings class.
from services.biometrics import config


class SibSettings(config.MatchSettings):
    """Settings of the SIB service."""

    model_config = SettingsConfigDict(env_prefix="SCFED_SIB_", extra="ignore")
    service_name: ClassVar[str] = "sib"

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    http_port: int = Field(default=8081, ge=0, le=65535)
    cjis_iafis_addr: str = "127.0.0.1:50052"
    ice_field_addr: str = "127.0.0.1:50055"
