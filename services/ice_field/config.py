"""ICE field office settings (prefix SCFED_ICE_FIELD_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ..federation import Agency
from ..runtime.config import ServiceSettings

PROFILE = Agency.ICE_FIELD.profile


class IceFieldSettings(ServiceSettings):
    """Settings of the ICE field office service."""

    model_config = SettingsConfigDict(env_prefix=PROFILE.env_prefix, extra="ignore")
    service_name: ClassVar[str] = PROFILE.agency

    grpc_port: int = Field(default=PROFILE.grpc_port, ge=0, le=65535)
    http_port: int = Field(default=PROFILE.http_port, ge=0, le=65535)
    sib_addr: str = Agency.SIB.profile.default_address
    # Removals go to IDENT as encounters.
    ident_addr: str = Agency.IDENT.profile.default_address
    # MOA section III.B.iii: Levels 2 and 3 are at the field office's discretion.
    discretion_level_2: Literal["detain", "decline"] = "detain"
    discretion_level_3: Literal["detain", "decline"] = "decline"
    # Form I-247: hold no longer than 48 hours, excluding Saturdays, Sundays and holidays.
    max_hold_hours: int = Field(default=48, ge=1, le=48)
    # Agency time the field office takes for each step of a case.
    pickup_hours: float = Field(default=4.0, ge=0)
    hearing_days: float = Field(default=30.0, ge=0)
    travel_document_days: float = Field(default=14.0, ge=0)
    removal_days: float = Field(default=7.0, ge=0)
    # Removal grounds that make a person a high flight risk (comma-separated; no ATD for them).
    atd_high_risk_grounds: str = "FINAL-ORDER,REINSTATEMENT"
    # How often (wall seconds) the field office looks for cases whose next step is due.
    case_poll_s: float = Field(default=1.0, gt=0)
