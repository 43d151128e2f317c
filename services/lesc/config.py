"""LESC settings (prefix SCFED_LESC_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from ..federation import Agency
from ..runtime.config import ServiceSettings
from .desk import parse_shifts
from .offense_levels import TABLE_NAMES, load_table

PROFILE = Agency.LESC.profile


class LescSettings(ServiceSettings):
    """Settings of the LESC service."""

    model_config = SettingsConfigDict(env_prefix=PROFILE.env_prefix, extra="ignore")
    service_name: ClassVar[str] = PROFILE.agency

    grpc_port: int = Field(default=PROFILE.grpc_port, ge=0, le=65535)
    http_port: int = Field(default=PROFILE.http_port, ge=0, le=65535)
    cjis_iafis_addr: str = Agency.CJIS_IAFIS.profile.default_address
    ice_field_addr: str = Agency.ICE_FIELD.profile.default_address
    # Which Appendix A table classifies offenses in this deployment: "moa", "strategic-plan",
    # or a path to a deployment's own .toml table in the same format.
    offense_table: str = "moa"
    # The 24x7 desk: shifts ("HH:MM=<analysts>"), handling times, answer target, routing.
    shifts: str = "06:00=6,14:00=4,22:00=2"
    analyst_minutes: float = Field(default=20.0, ge=0)
    vtc_minutes: float = Field(default=45.0, ge=0)
    iar_target_minutes: float = Field(default=120.0, gt=0)
    auto_min_score: float = Field(default=0.7, ge=0, le=1)
    vtc_below_score: float = Field(default=0.6, ge=0, le=1)
    # How often (wall seconds) the desk looks for work to start or finish.
    desk_poll_s: float = Field(default=0.5, gt=0)

    @field_validator("shifts")
    @classmethod
    def _shifts_parse(cls, value: str) -> str:
        parse_shifts(value)
        return value

    @field_validator("offense_table")
    @classmethod
    def _table_is_known(cls, value: str) -> str:
        if value.endswith(".toml"):
            load_table(value)  # a deployment's own table: refused at start when malformed
            return value
        if value not in TABLE_NAMES:
            raise ValueError(
                f"offense_table must be one of {', '.join(TABLE_NAMES)} or a path to a .toml "
                "table in the same format"
            )
        return value
