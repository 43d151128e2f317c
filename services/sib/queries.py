"""The SIB's read queries, and the response models they answer in: a booking with its
responses, a page of bookings, an LEA's inbox, and the summary the demo and dashboards read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..runtime.envelope import MessageType
from ..runtime.errors import NotFound, shown
from .models import (
    INTEROPERABILITY_RESPONSES,
    AgencyRecord,
    Booking,
    BookingStatus,
    ResponseRecord,
)


class ResponseView(BaseModel):
    """One response to a booking, as the LEA sees it."""

    id: int
    tcn: str
    kind: MessageType
    relayed: bool
    # ISO 8601 with the offset, as Python writes it.
    received_at: str
    # The message as received, in protobuf JSON.
    body: dict[str, Any]


class BookingSummary(BaseModel):
    """A booking without its responses."""

    tcn: str
    ori: str
    booking_number: str
    sid: str
    transaction: MessageType
    status: BookingStatus
    expects_idr: bool
    error: str
    accepted_at: str
    completed_at: str | None


class BookingView(BookingSummary):
    """A booking with every response received for it (relayed or not)."""

    responses: list[ResponseView]


class DetainersByLevel(BaseModel):
    """I-247 detainers relayed to the LEAs, by offense level."""

    level_1: int = 0
    level_2: int = 0
    level_3: int = 0


class Latency(BaseModel):
    """Booking-to-answer time of the finished bookings, in milliseconds of agency time."""

    p50: float
    p99: float


class BookingsSummary(BaseModel):
    """Counts by status and transaction, responses by kind and relay, detainers, latency."""

    bookings: int
    by_status: dict[BookingStatus, int]
    by_transaction: dict[MessageType, int]
    # Keyed "KIND:relayed" or "KIND:not_relayed".
    responses: dict[str, int]
    # Interoperability responses (no-match IDR, joint IDR/IAR) relayed to the LEA, or not.
    relayed_to_lea: int
    not_relayed: int
    detainers: DetainersByLevel
    latency_ms: Latency


def response_view(row: ResponseRecord) -> ResponseView:
    """One response as the LEA sees it."""
    return ResponseView(
        id=row.id,
        tcn=row.tcn,
        kind=row.kind,
        relayed=row.relayed,
        received_at=row.received_at.isoformat(),
        body=row.body,
    )


def _summary_fields(row: Booking) -> dict[str, Any]:
    return {
        "tcn": row.tcn,
        "ori": row.ori,
        "booking_number": row.booking_number,
        "sid": row.sid,
        "transaction": row.tot,
        "status": row.status,
        "expects_idr": row.expects_idr,
        "error": row.error,
        "accepted_at": row.accepted_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
    }


def booking_summary(row: Booking) -> BookingSummary:
    """A booking without its responses."""
    return BookingSummary(**_summary_fields(row))


async def booking_view(session: AsyncSession, tcn: str, *, ori: str | None = None) -> BookingView:
    """A booking with every response received for it (relayed or not); with `ori`, another
    agency's booking is not found, in the same words as an unknown TCN."""
    row = await session.get(Booking, tcn)
    if row is None or (ori is not None and row.ori != ori):
        raise NotFound(f"no booking with TCN {shown(tcn)}")
    responses = await session.scalars(
        select(ResponseRecord).where(ResponseRecord.tcn == tcn).order_by(ResponseRecord.id)
    )
    return BookingView(**_summary_fields(row), responses=[response_view(r) for r in responses])


async def bookings(
    session: AsyncSession, *, status: str | None, limit: int, offset: int, ori: str | None = None
) -> list[BookingSummary]:
    """A page of bookings, oldest first (of one agency with `ori`); a status no booking can
    have matches none."""
    query = select(Booking).order_by(Booking.accepted_at, Booking.tcn).limit(limit).offset(offset)
    if ori is not None:
        query = query.where(Booking.ori == ori)
    if status:
        if status not in set(BookingStatus):
            return []
        query = query.where(Booking.status == BookingStatus(status))
    return [booking_summary(row) for row in await session.scalars(query)]


async def inbox(session: AsyncSession, ori: str, *, after: int, limit: int) -> list[ResponseView]:
    """An LEA's inbox: the responses relayed to it, after a given id."""
    if await session.get(AgencyRecord, ori) is None:
        raise NotFound(f"no agency with ORI {shown(ori)}")
    rows = await session.scalars(
        select(ResponseRecord)
        .where(ResponseRecord.ori == ori, ResponseRecord.relayed, ResponseRecord.id > after)
        .order_by(ResponseRecord.id)
        .limit(limit)
    )
    return [response_view(r) for r in rows]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def summary(session: AsyncSession) -> BookingsSummary:
    """Counts the demo and dashboards need: bookings, transactions, relay, detainers, latency."""
    by_status: dict[BookingStatus, int] = {
        s: int(n)
        for s, n in await session.execute(
            select(Booking.status, func.count()).group_by(Booking.status)
        )
    }
    by_tot: dict[MessageType, int] = {
        t: int(n)
        for t, n in await session.execute(select(Booking.tot, func.count()).group_by(Booking.tot))
    }
    responses: dict[tuple[MessageType, bool], int] = {
        (k, bool(r)): int(n)
        for k, r, n in await session.execute(
            select(ResponseRecord.kind, ResponseRecord.relayed, func.count()).group_by(
                ResponseRecord.kind, ResponseRecord.relayed
            )
        )
    }
    detainers = DetainersByLevel()
    for row in await session.scalars(
        select(ResponseRecord).where(ResponseRecord.kind == MessageType.I247)
    ):
        level = str(row.body.get("detainer", {}).get("level", ""))
        if level == "OFFENSE_LEVEL_1":
            detainers.level_1 += 1
        elif level == "OFFENSE_LEVEL_2":
            detainers.level_2 += 1
        else:
            detainers.level_3 += 1
    latencies = sorted(
        (done - accepted).total_seconds() * 1000.0
        for accepted, done in await session.execute(
            select(Booking.accepted_at, Booking.completed_at).where(
                Booking.completed_at.is_not(None)
            )
        )
        if done is not None
    )
    interop = INTEROPERABILITY_RESPONSES
    return BookingsSummary(
        bookings=sum(by_status.values()),
        by_status=by_status,
        by_transaction=by_tot,
        responses={
            f"{k}:{'relayed' if r else 'not_relayed'}": n for (k, r), n in responses.items()
        },
        relayed_to_lea=sum(n for (k, r), n in responses.items() if k in interop and r),
        not_relayed=sum(n for (k, r), n in responses.items() if k in interop and not r),
        detainers=detainers,
        latency_ms=Latency(
            p50=round(_percentile(latencies, 0.50), 1),
            p99=round(_percentile(latencies, 0.99), 1),
        ),
    )
