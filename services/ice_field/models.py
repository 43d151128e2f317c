"""Field offices, their decisions on IARs, and the detainers they issued."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UtcDateTime


class IceFieldBase(DeclarativeBase):
    """Declarative base of the ICE field office tables."""


class FieldOfficeRecord(IceFieldBase):
    """A field office and the states of its area of responsibility."""

    __tablename__ = "field_offices"

    ori: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    states: Mapped[list[str]] = mapped_column(JSON)
    bed_capacity: Mapped[int] = mapped_column(Integer, default=0)


class DecisionRecord(IceFieldBase):
    """What a field office decided on one IAR."""

    __tablename__ = "decisions"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40))
    field_office: Mapped[str] = mapped_column(String(9))
    # detainer | declined (discretion) | no_action (not removable)
    action: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str] = mapped_column(String(32), default="")
    fin: Mapped[str] = mapped_column(String(16), default="")
    # Removed before and booked again: referred for prosecution (Strategic Plan, goal 2).
    reentry_after_removal: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DetainerRecord(IceFieldBase):
    """An I-247 detainer and the removal case that follows it (see cases.TRANSITIONS)."""

    __tablename__ = "detainers"

    detainer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    field_office: Mapped[str] = mapped_column(String(9))
    lea_ori: Mapped[str] = mapped_column(String(9))
    fin: Mapped[str] = mapped_column(String(16), default="", index=True)
    level: Mapped[int] = mapped_column(Integer)
    removal_ground: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    release_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    hold_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When the field office acts on the case next (agency time); None when nothing is due.
    next_action_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reentry_after_removal: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class CaseStepRecord(IceFieldBase):
    """One transition of a removal case, with its agency time."""

    __tablename__ = "case_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detainer_id: Mapped[str] = mapped_column(ForeignKey("detainers.detainer_id"), index=True)
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
