"""IDENT settings (prefix SCFED_IDENT_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

# The module, not the class: a service config module holds exactly one settings class.
from services.biometrics import config


class IdentSettings(config.GallerySettings):
    """Settings of the IDENT service."""

    model_config = SettingsConfigDict(env_prefix="SCFED_IDENT_", extra="ignore")
    service_name: ClassVar[str] = "ident"

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    http_port: int = Field(default=8083, ge=0, le=65535)
    cjis_iafis_addr: str = "127.0.0.1:50052"
