"""The audit trail: every biometric search and every record read through an edge, with who
asked, when, through which RPC, for which TCN, why, and what came of it.

A search or read writes its record with `record` in the transaction of the work, so the record
exists exactly when the work committed. A refused request rolls that transaction back: `refusals`
writes the refusal in a transaction of its own (the way the inbox journals REFUSED), so refusals
are on the trail too. `audited_read` does both for a plain read.

Records are never changed or deleted: no route or RPC does either, a reset leaves the table and
adds a record that it happened, a snapshot neither saves nor replaces it (control.py's
`service_tables` leaves it out), and the database itself refuses UPDATE and DELETE on it (a
trigger created with the table, models.py).

Who asked: with TLS on, `caller` answers the identity of the gRPC caller's certificate
(`sib`, `operator`); with it off, the best identity there is (an inter-agency message's
sender, else the unauthenticated peer address). `http_caller` names the SIB's LEA by ORI (the
ORI of its API key when the SIB requires LEA credentials, sib/api.py), else the unauthenticated
client address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database
from .errors import DomainError
from .models import AuditOutcome, AuditRecord, Purpose
from .tls import peer_identity

if TYPE_CHECKING:
    import grpc
    from fastapi import Request

    from scfed.common.v1 import common_pb2

__all__ = [
    "AuditOutcome",
    "AuditView",
    "Purpose",
    "audited_read",
    "caller",
    "entries",
    "http_caller",
    "lea_caller",
    "record",
    "record_alone",
    "refusals",
]

# The longest list `entries` returns.
MAX_ENTRIES = 1000


def _clip(text: str, limit: int) -> str:
    """`text` cut to the column's length (PostgreSQL refuses longer values)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _length(column: str) -> int:
    return int(AuditRecord.__table__.c[column].type.length)  # type: ignore[attr-defined]


def record(
    session: AsyncSession,
    *,
    who: str,
    rpc: str,
    tcn: str,
    purpose: Purpose,
    outcome: AuditOutcome,
    candidates: int = 0,
    detail: str = "",
) -> None:
    """Adds one audit record to the session's transaction (wall-clock time now); every string
    is clipped to its column."""
    session.add(
        AuditRecord(
            at=datetime.now(UTC),
            who=_clip(who, _length("who")),
            rpc=_clip(rpc, _length("rpc")),
            tcn=_clip(tcn, _length("tcn")),
            purpose=purpose,
            outcome=outcome,
            candidates=candidates,
            detail=_clip(detail, _length("detail")),
        )
    )


async def record_alone(
    db: Database,
    *,
    who: str,
    rpc: str,
    tcn: str,
    purpose: Purpose,
    outcome: AuditOutcome,
    candidates: int = 0,
    detail: str = "",
) -> None:
    """Writes one audit record in a transaction of its own: for a search that changes nothing
    else (IDENT's Identify), and for a refusal (whose work was rolled back)."""
    async with db.session() as session:
        record(
            session,
            who=who,
            rpc=rpc,
            tcn=tcn,
            purpose=purpose,
            outcome=outcome,
            candidates=candidates,
            detail=detail,
        )


@asynccontextmanager
async def refusals(
    db: Database, *, who: str, rpc: str, tcn: str, purpose: Purpose, detail: str = ""
) -> AsyncIterator[None]:
    """Audits a DomainError raised inside as refused, in a transaction of its own (the work's
    was rolled back), and lets it propagate."""
    try:
        yield
    except DomainError as exc:
        await record_alone(
            db,
            who=who,
            rpc=rpc,
            tcn=tcn,
            purpose=purpose,
            outcome=AuditOutcome.REFUSED,
            detail=f"{detail} {exc.status}: {exc.message}".strip(),
        )
        raise


@asynccontextmanager
async def audited_read(
    db: Database,
    *,
    who: str,
    rpc: str,
    tcn: str = "",
    purpose: Purpose = Purpose.ADMINISTRATIVE,
    detail: str = "",
) -> AsyncIterator[AsyncSession]:
    """A session for a record read, audited as read when it commits and as refused on a
    DomainError."""
    async with (
        refusals(db, who=who, rpc=rpc, tcn=tcn, purpose=purpose, detail=detail),
        db.session() as session,
    ):
        yield session
        record(
            session,
            who=who,
            rpc=rpc,
            tcn=tcn,
            purpose=purpose,
            outcome=AuditOutcome.READ,
            detail=detail,
        )


def caller(
    context: grpc.aio.ServicerContext | None, envelope: common_pb2.Envelope | None = None
) -> str:
    """Who made a gRPC call: the identity of its client certificate (with TLS on), else an
    inter-agency message's sender (the agency), else "unauthenticated@<peer>"."""
    identity = peer_identity(context) if context is not None else None
    if identity:
        return identity
    if envelope is not None and envelope.sender:
        return envelope.sender
    peer = context.peer() if context is not None else ""
    return f"unauthenticated@{peer or 'unknown'}"


def lea_caller(ori: str) -> str:
    """A local agency at the SIB's edge, named by its ORI as the journal names it."""
    return f"lea:{ori}"


def http_caller(request: Request, *, lea_ori: str | None = None) -> str:
    """Who made an HTTP request: the LEA by ORI on the SIB's agency edge, else
    "unauthenticated@<client host>". mTLS will answer the certificate subject here."""
    if lea_ori:
        return lea_caller(lea_ori)
    host = request.client.host if request.client is not None else ""
    return f"unauthenticated@{host or 'unknown'}"


class AuditView(BaseModel):
    """One audit record as the HTTP edge serves it."""

    id: int
    service: str
    at: datetime
    who: str
    rpc: str
    tcn: str
    purpose: Purpose
    outcome: AuditOutcome
    candidates: int
    detail: str


async def entries(
    db: Database,
    service: str,
    *,
    tcn: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditView]:
    """Audit records, oldest first: of one TCN, at or after a time, at most `limit`."""
    query = select(AuditRecord).order_by(AuditRecord.id).limit(min(limit, MAX_ENTRIES))
    if tcn is not None:
        query = query.where(AuditRecord.tcn == tcn)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    async with db.session() as session:
        rows = await session.scalars(query)
        return [
            AuditView(
                id=row.id,
                service=service,
                at=row.at,
                who=row.who,
                rpc=row.rpc,
                tcn=row.tcn,
                purpose=row.purpose,
                outcome=row.outcome,
                candidates=row.candidates,
                detail=row.detail,
            )
            for row in rows
        ]
