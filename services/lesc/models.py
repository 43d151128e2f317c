"""LESC cases: one per IAQ."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..runtime.db import StrEnumType, UtcDateTime


class Route(StrEnum):
    """The path an IAQ takes through the desk (see desk.DeskPolicy.route)."""

    AUTOMATED = "automated"
    ANALYST = "analyst"
    VTC = "vtc"


class CaseState(StrEnum):
    """Where a case stands: queued -> in_work -> answered (automated cases are answered at
    receipt)."""

    QUEUED = "queued"
    IN_WORK = "in_work"
    ANSWERED = "answered"


class LescBase(DeclarativeBase):
    """Declarative base of the LESC tables."""


class CaseRecord(LescBase):
    """An IAQ and its status determination."""

    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tcn: Mapped[str] = mapped_column(String(40), unique=True)
    ori: Mapped[str] = mapped_column(String(9))
    fin: Mapped[str] = mapped_column(String(16))
    a_number: Mapped[str] = mapped_column(String(12), default="")
    fbi_number: Mapped[str] = mapped_column(String(12), default="")
    status: Mapped[str] = mapped_column(String(40))
    removable: Mapped[bool] = mapped_column(Boolean)
    current_charge_level: Mapped[int] = mapped_column(Integer)
    prior_conviction_level: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    offense_table: Mapped[str] = mapped_column(String(20))
    # The IAR as determined at receipt; determined_at is set when it is answered.
    iar: Mapped[bytes] = mapped_column(LargeBinary)
    # The IAQ as received (its Nlets text is rendered from it); None in a case an older
    # version kept.
    iaq: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    booking_number: Mapped[str] = mapped_column(String(40), default="")
    nam: Mapped[str] = mapped_column(String(80), default="")
    route: Mapped[Route] = mapped_column(StrEnumType(Route, 12))
    state: Mapped[CaseState] = mapped_column(StrEnumType(CaseState, 12), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    work_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
