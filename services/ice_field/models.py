"""Field offices, their decisions on IARs, and the detainers they issued."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..runtime.db import StrEnumType, UtcDateTime


class CaseState(StrEnum):
    """The states of a removal case, from detainer to removal (see cases.TRANSITIONS)."""

    DETAINER_ISSUED = "detainer_issued"
    RELEASE_NOTICED = "release_noticed"
    IN_CUSTODY = "in_custody"
    ATD = "alternatives_to_detention"
    IN_PROCEEDINGS = "in_proceedings"
    FINAL_ORDER = "final_order"
    TRAVEL_DOCUMENT = "travel_document"
    REMOVED = "removed"
    LAPSED = "lapsed"
    RELIEF_GRANTED = "relief_granted"


# The states in which a case is closed (cases.TERMINAL, which a test holds this to).
CLOSED_STATES: tuple[CaseState, ...] = (
    CaseState.REMOVED,
    CaseState.LAPSED,
    CaseState.RELIEF_GRANTED,
)
# A person (FIN) has at most one open case: the database refuses a second, so two deliveries
# processed at once on two replicas cannot both open one. A partial unique index, which SQLite
# and PostgreSQL both have.
_OPEN_CASE = text(
    "fin != '' AND state NOT IN (" + ", ".join(f"'{s.value}'" for s in CLOSED_STATES) + ")"
)


class BookingEffect(StrEnum):
    """What a booking did to the person's one open case."""

    OPENED = "opened"
    # Lodged again with the booking's LEA: ICE had not picked the person up yet.
    DETAINER_MOVED = "detainer moved"
    # ICE holds or supervises the person already: the case goes on.
    RECORDED = "recorded"


class ReferralStatus(StrEnum):
    """Where a referral for prosecution stands with the U.S. Attorney's office."""

    REFERRED = "referred"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class DecisionAction(StrEnum):
    """What a field office did with an IAR."""

    DETAINER = "detainer"
    # Removable, but the office's discretion policy declines Level 2 or 3.
    DECLINED = "declined"
    # Not removable.
    NO_ACTION = "no_action"


class FlightRisk(StrEnum):
    """A subject's flight risk, as the custody policy judges it."""

    LOW = "low"
    HIGH = "high"


class IceFieldBase(DeclarativeBase):
    """Declarative base of the ICE field office tables."""


class FieldOfficeRecord(IceFieldBase):
    """A field office and the states of its area of responsibility."""

    __tablename__ = "field_offices"

    ori: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    states: Mapped[list[str]] = mapped_column(JSON)
    # Beds of an office without facilities (one implicit facility); else the facilities' sum.
    bed_capacity: Mapped[int] = mapped_column(Integer, default=0)
    # People the office can supervise in Alternatives to Detention at once.
    atd_slots: Mapped[int] = mapped_column(Integer, default=0)
    # Where the office refers re-entry after removal for prosecution (nullable: a database of
    # an earlier version gains the column empty, and the default recipient applies).
    us_attorney_office: Mapped[str | None] = mapped_column(String(40), nullable=True)


class FacilityRecord(IceFieldBase):
    """A detention facility of a field office and its ICE-funded beds."""

    __tablename__ = "facilities"

    facility_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    field_office: Mapped[str] = mapped_column(String(9), index=True)
    name: Mapped[str] = mapped_column(String(80))
    beds: Mapped[int] = mapped_column(Integer)


class DecisionRecord(IceFieldBase):
    """What a field office decided on one IAR."""

    __tablename__ = "decisions"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40))
    field_office: Mapped[str] = mapped_column(String(9))
    action: Mapped[DecisionAction] = mapped_column(StrEnumType(DecisionAction, 16))
    level: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str] = mapped_column(String(32), default="")
    fin: Mapped[str] = mapped_column(String(16), default="")
    # Removed before and booked again: referred for prosecution (Strategic Plan, goal 2).
    reentry_after_removal: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # From the IAR, for the Strategic Plan's measures: 0 where none applies.
    removable: Mapped[bool] = mapped_column(Boolean, default=False)
    current_charge_level: Mapped[int] = mapped_column(Integer, default=0)
    prior_conviction_level: Mapped[int] = mapped_column(Integer, default=0)


class DetainerRecord(IceFieldBase):
    """An I-247 detainer and the removal case that follows it (see cases.TRANSITIONS)."""

    __tablename__ = "detainers"
    __table_args__ = (
        Index(
            "uq_detainers_open_case_per_fin",
            "fin",
            unique=True,
            sqlite_where=_OPEN_CASE,
            postgresql_where=_OPEN_CASE,
        ),
    )

    detainer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    field_office: Mapped[str] = mapped_column(String(9))
    lea_ori: Mapped[str] = mapped_column(String(9))
    fin: Mapped[str] = mapped_column(String(16), default="", index=True)
    level: Mapped[int] = mapped_column(Integer)
    removal_ground: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[CaseState] = mapped_column(StrEnumType(CaseState, 32), index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    release_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    hold_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When the field office acts on the case next (agency time); None when nothing is due.
    next_action_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reentry_after_removal: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # Criminal history from the IAR: a convicted ("criminal") alien has a prior conviction level.
    current_charge_level: Mapped[int] = mapped_column(Integer, default=0)
    prior_conviction_level: Mapped[int] = mapped_column(Integer, default=0)
    flight_risk: Mapped[FlightRisk] = mapped_column(
        StrEnumType(FlightRisk, 8), default=FlightRisk.LOW
    )
    # The facility whose bed the subject holds while in custody.
    facility_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    custody_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    custody_ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Eligible for Alternatives to Detention when ICE took the case on, and whether it went there.
    atd_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    on_atd: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseStepRecord(IceFieldBase):
    """One transition of a removal case, with its agency time."""

    __tablename__ = "case_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detainer_id: Mapped[str] = mapped_column(ForeignKey("detainers.detainer_id"), index=True)
    # None for the first step, stored as "".
    from_state: Mapped[CaseState | None] = mapped_column(
        StrEnumType(CaseState, 32, empty_is_none=True), nullable=False
    )
    to_state: Mapped[CaseState] = mapped_column(StrEnumType(CaseState, 32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")


class CaseBookingRecord(IceFieldBase):
    """A booking of the subject recorded on an open case: the one that opened it, and each
    later one (a person has one open case, never a second)."""

    __tablename__ = "case_bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detainer_id: Mapped[str] = mapped_column(ForeignKey("detainers.detainer_id"), index=True)
    tcn: Mapped[str] = mapped_column(String(40), unique=True)
    lea_ori: Mapped[str] = mapped_column(String(9))
    booking_number: Mapped[str] = mapped_column(String(40), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    current_charge_level: Mapped[int] = mapped_column(Integer, default=0)
    effect: Mapped[BookingEffect] = mapped_column(StrEnumType(BookingEffect, 20))


class ReferralRecord(IceFieldBase):
    """A referral for prosecution of re-entry after removal to a U.S. Attorney's office: one
    per person and removal, whatever the number of bookings that show it."""

    __tablename__ = "referrals"
    __table_args__ = (Index("uq_referrals_fin_removal", "fin", "removed_at", unique=True),)

    referral_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    fin: Mapped[str] = mapped_column(String(16), index=True)
    field_office: Mapped[str] = mapped_column(String(9))
    us_attorney_office: Mapped[str] = mapped_column(String(40))
    booking_tcn: Mapped[str] = mapped_column(String(40))
    # The case the booking opened or was recorded on ("" when the office took no action).
    detainer_id: Mapped[str] = mapped_column(String(40), default="")
    statute: Mapped[str] = mapped_column(String(40))
    status: Mapped[ReferralStatus] = mapped_column(StrEnumType(ReferralStatus, 16), index=True)
    referred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    removed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
