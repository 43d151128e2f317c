"""The message journal: every message a service sends or receives, for traces and counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NamedTuple

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2, common_pb2_grpc

from . import tracing
from .db import Database
from .edge import grpc_edge
from .errors import InvalidArgument
from .models import Direction, JournalRecord, Outcome


class JournalKey(NamedTuple):
    """What journal counts are keyed by; written "direction:TOT:outcome" on the wire.

    The TOT is a plain string because a peer's message is journaled with whatever TOT its
    envelope carries; readers name it with a MessageType member.
    """

    direction: Direction
    tot: str
    outcome: Outcome

    def __str__(self) -> str:
        return f"{self.direction}:{self.tot}:{self.outcome}"

    @classmethod
    def parse(cls, text: str) -> JournalKey:
        """The key written "direction:TOT:outcome"; ValueError when it is not one."""
        direction, _, rest = text.partition(":")
        tot, _, outcome = rest.rpartition(":")
        if not tot:
            raise ValueError(f"not a journal key (direction:TOT:outcome): {text!r}")
        return cls(Direction(direction), tot, Outcome(outcome))


def counts_from_json(data: Mapping[str, int]) -> dict[JournalKey, int]:
    """Journal counts as the HTTP edge serves them, keyed by JournalKey again."""
    return {JournalKey.parse(key): int(n) for key, n in data.items()}


def counts_to_json(data: Mapping[JournalKey, int]) -> dict[str, int]:
    """Journal counts keyed "direction:TOT:outcome", as the HTTP edge serves them."""
    return {str(key): n for key, n in data.items()}


def record(
    session: AsyncSession,
    *,
    message_id: str,
    tcn: str,
    tot: str,
    direction: Direction,
    peer: str,
    outcome: Outcome,
    detail: str = "",
    at: datetime | None = None,
    trace: tuple[str, str] | None = None,
) -> None:
    """Adds one journal entry to the session's transaction (wall-clock time, default now),
    with `trace` (trace id, span id), by default the active span's."""
    trace_id, span_id = trace if trace is not None else tracing.current_ids()
    session.add(
        JournalRecord(
            message_id=message_id,
            tcn=tcn,
            tot=tot,
            direction=direction,
            peer=peer,
            at=at or datetime.now(UTC),
            outcome=outcome,
            detail=detail[:2000],
            trace_id=trace_id,
            span_id=span_id,
        )
    )


async def last_trace(session: AsyncSession, tcn: str) -> tuple[str, str] | None:
    """The trace id and span id of `tcn`'s latest entry written under a trace, or None: where
    work that no request started (an analyst's answer, an LEA's later notice) carries on the
    booking's trace."""
    row = (
        await session.execute(
            select(JournalRecord.trace_id, JournalRecord.span_id)
            .where(
                JournalRecord.tcn == tcn,
                JournalRecord.trace_id.is_not(None),
                JournalRecord.span_id.is_not(None),
            )
            .order_by(JournalRecord.id.desc())
            .limit(1)
        )
    ).first()
    if row is None or not row[0] or not row[1]:
        return None
    return str(row[0]), str(row[1])


async def entries_for(db: Database, tcn: str) -> list[JournalRecord]:
    """The entries of one booking, oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(JournalRecord).where(JournalRecord.tcn == tcn).order_by(JournalRecord.id)
        )
        return list(rows)


# The most entries one page of `page` returns.
MAX_PAGE = 5000


async def page(db: Database, *, after: int, limit: int) -> list[JournalRecord]:
    """The entries with an id after `after`, oldest first, at most `limit`."""
    async with db.session() as session:
        rows = await session.scalars(
            select(JournalRecord)
            .where(JournalRecord.id > after)
            .order_by(JournalRecord.id)
            .limit(min(limit, MAX_PAGE))
        )
        return list(rows)


def to_json(entry: JournalRecord, service: str) -> dict[str, str]:
    """An entry as the HTTP edge serves it."""
    return {
        "service": service,
        "message_id": entry.message_id,
        "tcn": entry.tcn,
        "tot": entry.tot,
        "direction": entry.direction,
        "peer": entry.peer,
        "at": entry.at.isoformat(),
        "outcome": entry.outcome,
        "detail": entry.detail,
        "trace_id": entry.trace_id or "",
    }


async def counts(db: Database) -> dict[JournalKey, int]:
    """Counts of entries by direction, TOT and outcome."""
    async with db.session() as session:
        rows = await session.execute(
            select(
                JournalRecord.direction,
                JournalRecord.tot,
                JournalRecord.outcome,
                func.count(),
            ).group_by(JournalRecord.direction, JournalRecord.tot, JournalRecord.outcome)
        )
        return {JournalKey(d, t, o): int(n) for d, t, o, n in rows}


def to_proto(entry: JournalRecord, service: str) -> common_pb2.JournalEntry:
    """The wire form of a journal entry."""
    at = Timestamp()
    at.FromDatetime(entry.at)
    return common_pb2.JournalEntry(
        message_id=entry.message_id,
        tcn=entry.tcn,
        tot=entry.tot,
        direction=entry.direction,
        peer=entry.peer,
        at=at,
        outcome=entry.outcome,
        detail=entry.detail,
        service=service,
        trace_id=entry.trace_id or "",
    )


class JournalServicer(common_pb2_grpc.JournalServicer):
    """Serves one service's journal over gRPC."""

    def __init__(self, db: Database, service: str) -> None:
        self._db = db
        self._service = service

    @grpc_edge
    async def GetJournal(
        self, request: common_pb2.JournalQuery, context: grpc.aio.ServicerContext
    ) -> common_pb2.JournalPage:
        """Lists the entries of one booking TCN."""
        if not request.tcn.strip():
            raise InvalidArgument("tcn is required")
        entries = await entries_for(self._db, request.tcn.strip())
        return common_pb2.JournalPage(entries=[to_proto(e, self._service) for e in entries])
