"""CJIS/IAFIS settings (prefix SCFED_CJIS_IAFIS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

# The module, not the class: a service config module holds exactly one settings class.
from services.biometrics import config


class CjisSettings(config.GallerySettings):
    """Settings of the CJIS/IAFIS service."""

    model_config = SettingsConfigDict(env_prefix="SCFED_CJIS_IAFIS_", extra="ignore")
    service_name: ClassVar[str] = "cjis_iafis"

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    http_port: int = Field(default=8082, ge=0, le=65535)
    sib_addr: str = "127.0.0.1:50051"
    ident_addr: str = "127.0.0.1:50053"
    lesc_addr: str = "127.0.0.1:50054"
