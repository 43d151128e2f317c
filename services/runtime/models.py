"""Tables every service holds beside its own: outbox, inbox, message journal and audit trail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DDL, Float, Index, Integer, LargeBinary, String, Text, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .db import StrEnumType, UtcDateTime


class OutboxStatus(StrEnum):
    """Where an outbox message stands: pending -> inflight -> delivered | pending (retry) | dead."""

    PENDING = "pending"
    INFLIGHT = "inflight"
    DELIVERED = "delivered"
    DEAD = "dead"


class Direction(StrEnum):
    """Whether a journaled message was sent or received."""

    SENT = "sent"
    RECEIVED = "received"


class Outcome(StrEnum):
    """What became of a journaled message."""

    # Received: handled once, a repeat of a handled message id, or refused with a domain error.
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    # Sent: acknowledged by the peer, or given up on (the dead-letter state).
    DELIVERED = "delivered"
    DEAD = "dead"
    # The SIB's agency edge: a booking taken from an LEA, a response put (or not) in its inbox.
    ACCEPTED = "accepted"
    RELAYED = "relayed"
    NOT_RELAYED = "not_relayed"
    # Either direction: a fault rule acted on the message (runtime/faults.py).
    FAULT = "fault"


class Purpose(StrEnum):
    """Why a record was searched or read, as the audit trail states it."""

    BOOKING = "booking"
    ADMINISTRATIVE = "administrative"


class AuditOutcome(StrEnum):
    """What an audited search or read came to."""

    MATCH = "match"
    NO_MATCH = "no_match"
    READ = "read"
    REFUSED = "refused"
    RESET = "reset"
    # A jurisdiction's interoperability suspended or resumed (MOA VIII), with who and why.
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    # An LEA's API key issued (the previous one revoked); the key itself is never recorded.
    ISSUED = "issued"


class RuntimeBase(DeclarativeBase):
    """Declarative base of the shared runtime tables."""


class OutboxMessage(RuntimeBase):
    """A message to a peer, written in the transaction of the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    peer: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(128))
    # The TOT of the message's envelope (a plain string: the transport does not read it).
    tot: Mapped[str] = mapped_column(String(16))
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(
        StrEnumType(OutboxStatus, 16), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The W3C trace context of the span that wrote the message (runtime/tracing.py), restored
    # when it is sent; None when it was written with tracing off.
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracestate: Mapped[str | None] = mapped_column(String(512), nullable=True)

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class InboxMessage(RuntimeBase):
    """A message id this service has processed; its key makes receipt idempotent."""

    __tablename__ = "inbox"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # As the peer's envelope carried it: a peer may send a TOT this federation does not know.
    tot: Mapped[str] = mapped_column(String(16))
    tcn: Mapped[str] = mapped_column(String(40))
    peer: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class JournalRecord(RuntimeBase):
    """One message sent or received, as the trace shows it."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36))
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    # As the envelope carried it (see InboxMessage.tot); usually a MessageType.
    tot: Mapped[str] = mapped_column(String(16))
    direction: Mapped[Direction] = mapped_column(StrEnumType(Direction, 8))
    peer: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[Outcome] = mapped_column(StrEnumType(Outcome, 16))
    detail: Mapped[str] = mapped_column(Text, default="")
    # The trace the entry was written in (32 hex) and the span that wrote it, or the message's
    # writer for a sent entry (16 hex); None with tracing off.
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    span_id: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ClockEpoch(RuntimeBase):
    """The anchor of an accelerated agency clock, shared by every replica of a service: agency
    time was `agency_epoch` at wall time `wall_epoch` and runs `factor` times faster."""

    __tablename__ = "clock_epoch"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    factor: Mapped[float] = mapped_column(Float)
    wall_epoch: Mapped[datetime] = mapped_column(UtcDateTime)
    agency_epoch: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditRecord(RuntimeBase):
    """One biometric search or record read: who, when, which RPC, the TCN, why and what came
    of it. Written in the transaction of the work; never changed or deleted (runtime/audit.py)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    who: Mapped[str] = mapped_column(String(200))
    rpc: Mapped[str] = mapped_column(String(64))
    tcn: Mapped[str] = mapped_column(String(40), index=True)
    purpose: Mapped[Purpose] = mapped_column(StrEnumType(Purpose, 16))
    outcome: Mapped[AuditOutcome] = mapped_column(StrEnumType(AuditOutcome, 16))
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(String(500), default="")


_IMMUTABLE = "audit records cannot be changed or deleted"
# The database itself refuses to change or delete an audit record, whoever asks: triggers
# created with the table (SQLite raises; PostgreSQL calls a function that raises).
_AUDIT_TRIGGERS = {
    "sqlite": (
        f"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END",
        f"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION audit_immutable() RETURNS trigger LANGUAGE plpgsql AS "
        f"$body$ BEGIN RAISE EXCEPTION '{_IMMUTABLE}'; END $body$",
        "CREATE TRIGGER audit_immutable BEFORE UPDATE OR DELETE ON audit "
        "FOR EACH ROW EXECUTE FUNCTION audit_immutable()",
    ),
}
for _dialect, _statements in _AUDIT_TRIGGERS.items():
    for _statement in _statements:
        event.listen(
            AuditRecord.__table__,
            "after_create",
            DDL(_statement).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )
