"""SIB settings (prefix SCFED_SIB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.runtime.biometrics import DEFAULT_THRESHOLD
from services.runtime.config import ServiceSettings


class SibSettings(ServiceSettings):
    """Settings of the SIB service."""

    model_config = SettingsConfigDict(env_prefix="SCFED_SIB_", extra="ignore")
    service_name: ClassVar[str] = "sib"

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    http_port: int = Field(default=8081, ge=0, le=65535)
    cjis_iafis_addr: str = "127.0.0.1:50052"
    ice_field_addr: str = "127.0.0.1:50055"
    match_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
