"""LESC settings (prefix SCFED_LESC_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.lesc.offense_levels import TABLE_NAMES
from services.runtime.config import ServiceSettings


class LescSettings(ServiceSettings):
    """Settings of the LESC service."""

    model_config = SettingsConfigDict(env_prefix="SCFED_LESC_", extra="ignore")
    service_name: ClassVar[str] = "lesc"

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    http_port: int = Field(default=8084, ge=0, le=65535)
    cjis_iafis_addr: str = "127.0.0.1:50052"
    ice_field_addr: str = "127.0.0.1:50055"
    # Which Appendix A table classifies offenses in this deployment.
    offense_table: str = "moa"

    @field_validator("offense_table")
    @classmethod
    def _table_is_known(cls, value: str) -> str:
        if value not in TABLE_NAMES:
            raise ValueError(f"offense_table must be one of {', '.join(TABLE_NAMES)}")
        return value
