"""SIB tables: states, agencies, state records (SID), bookings and the responses to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..runtime.db import StrEnumType, UtcDateTime
from ..runtime.envelope import MessageType


class BookingStatus(StrEnum):
    """Where a booking's transaction stands: awaiting_fbi_number -> submitted -> answered |
    refused. A CPI waits for the FBI number its first arrest's SRE brings."""

    AWAITING_FBI_NUMBER = "awaiting_fbi_number"
    SUBMITTED = "submitted"
    ANSWERED = "answered"
    REFUSED = "refused"

    @property
    def finished(self) -> bool:
        """True once nothing more will come for the booking."""
        return self in FINISHED


# The statuses a booking ends in.
FINISHED: Final = frozenset({BookingStatus.ANSWERED, BookingStatus.REFUSED})
# The responses that answer the interoperability search, relayed to the LEA or not.
INTEROPERABILITY_RESPONSES: Final = frozenset({MessageType.NO_MATCH_IDR, MessageType.IDR_IAR})


class SibBase(DeclarativeBase):
    """Declarative base of the SIB tables."""


class StateRecord(SibBase):
    """A state served by the SIB, with its NFF, relay and MOA settings."""

    __tablename__ = "states"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    sib_ori: Mapped[str] = mapped_column(String(9), default="")
    nff: Mapped[bool] = mapped_column(Boolean)
    relay_capable: Mapped[bool] = mapped_column(Boolean)
    moa_status: Mapped[int] = mapped_column(Integer)
    termination_effective_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class AgencyRecord(SibBase):
    """A local law enforcement agency, keyed by ORI."""

    __tablename__ = "agencies"

    ori: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    activated: Mapped[bool] = mapped_column(Boolean)
    # YYYYMMDD: activated for bookings dated (DOA) on or after it; None or "": any date.
    activated_on: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The national rollout phase that activates it (None or 0: none), and its share (0..1)
    # of the criminal alien population as the rollout plan weighed it.
    rollout_phase: Mapped[int | None] = mapped_column(Integer, nullable=True)
    criminal_alien_share: Mapped[float | None] = mapped_column(Float, nullable=True)


class JurisdictionSuspension(SibBase):
    """A jurisdiction (LEA) whose interoperability one party to the MOA has suspended (MOA
    VIII); the row goes when the suspension is lifted."""

    __tablename__ = "jurisdiction_suspensions"

    ori: Mapped[str] = mapped_column(String(9), primary_key=True)
    # The SuspendingParty enum's number (SIB or ICE).
    suspended_by: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    suspended_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StateSubject(SibBase):
    """A state record: one person known to the state by SID, with prints and FBI number."""

    __tablename__ = "state_subjects"

    sid: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[str] = mapped_column(String(2))
    fbi_number: Mapped[str] = mapped_column(String(12), default="")
    tenprint: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Booking(SibBase):
    """A booking from an LEA and where its transaction stands."""

    __tablename__ = "bookings"

    tcn: Mapped[str] = mapped_column(String(40), primary_key=True)
    ori: Mapped[str] = mapped_column(String(9))
    booking_number: Mapped[str] = mapped_column(String(40))
    sid: Mapped[str] = mapped_column(String(20))
    # CAR or CPI
    tot: Mapped[MessageType] = mapped_column(StrEnumType(MessageType, 8))
    # The booking as accepted, in the stored form of services.runtime.proto_json: the
    # common.v1 Descriptors and Charges (race and ethnicity never stored: they never get here).
    descriptors: Mapped[dict[str, Any]] = mapped_column(JSON)
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    doa: Mapped[str] = mapped_column(String(8))
    # The prints are not stored with the booking, but a resubmission must carry the same ones.
    prints_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[BookingStatus] = mapped_column(StrEnumType(BookingStatus, 24))
    expects_idr: Mapped[bool] = mapped_column(Boolean)
    # What the CAR or CPI attests (cjis_iafis.v1 Interoperability, stored form of
    # services.runtime.proto_json); None on bookings taken before it was kept: both gates
    # are then `expects_idr`.
    interoperability: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    sre_received: Mapped[bool] = mapped_column(Boolean, default=False)
    idr_received: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("ori", "booking_number", name="uq_booking_per_agency"),
        Index("ix_bookings_status", "status"),
    )


class ResponseRecord(SibBase):
    """A response to a booking (SRE, ERRT, IDR, IDR/IAR, I-247) and whether the LEA got it."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    ori: Mapped[str] = mapped_column(String(9), index=True)
    # SRE, ERRT, NO-MATCH-IDR, IDR/IAR or I-247
    kind: Mapped[MessageType] = mapped_column(StrEnumType(MessageType, 16))
    # The detainer id of an I-247, so an LEA's release notice can name it.
    ref: Mapped[str] = mapped_column(String(40), default="", index=True)
    relayed: Mapped[bool] = mapped_column(Boolean)
    # The message as received, in the stored form of services.runtime.proto_json.
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LeaCredentialRecord(SibBase):
    """An LEA's current API key at the agency edge: its SHA-256 only, never the key. Issuing a
    new key replaces the row (the old key is revoked). A table of its own, so that databases
    made before credentials existed need no migration."""

    __tablename__ = "lea_credentials"

    ori: Mapped[str] = mapped_column(String(9), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
