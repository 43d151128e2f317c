"""The message journal: every message a service sends or receives, for traces and counts."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.common.v1 import common_pb2, common_pb2_grpc
from services.runtime.db import Database
from services.runtime.models import JournalRecord

SENT = "sent"
RECEIVED = "received"


def record(
    session: AsyncSession,
    *,
    message_id: str,
    tcn: str,
    tot: str,
    direction: str,
    peer: str,
    outcome: str,
    detail: str = "",
    at: datetime | None = None,
) -> None:
    """Adds one journal entry to the session's transaction (wall-clock time, default now)."""
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
        )
    )


async def entries_for(db: Database, tcn: str) -> list[JournalRecord]:
    """The entries of one booking, oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(JournalRecord).where(JournalRecord.tcn == tcn).order_by(JournalRecord.id)
        )
        return list(rows)


async def counts(db: Database) -> dict[str, int]:
    """Counts of entries keyed "direction:TOT:outcome"."""
    async with db.session() as session:
        rows = await session.execute(
            select(
                JournalRecord.direction,
                JournalRecord.tot,
                JournalRecord.outcome,
                func.count(),
            ).group_by(JournalRecord.direction, JournalRecord.tot, JournalRecord.outcome)
        )
        return {f"{d}:{t}:{o}": int(n) for d, t, o, n in rows}


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
    )


class JournalServicer(common_pb2_grpc.JournalServicer):
    """Serves one service's journal over gRPC."""

    def __init__(self, db: Database, service: str) -> None:
        self._db = db
        self._service = service

    async def GetJournal(
        self, request: common_pb2.JournalQuery, context: grpc.aio.ServicerContext
    ) -> common_pb2.JournalPage:
        """Lists the entries of one booking TCN."""
        if not request.tcn.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tcn is required")
        entries = await entries_for(self._db, request.tcn.strip())
        return common_pb2.JournalPage(entries=[to_proto(e, self._service) for e in entries])
