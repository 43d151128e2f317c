"""Read-side views of the SIB: a booking with its responses, an LEA's inbox, a summary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.errors import NotFound
from services.sib.models import AgencyRecord, Booking, ResponseRecord


def response_view(row: ResponseRecord) -> dict[str, Any]:
    """One response as the LEA sees it."""
    return {
        "id": row.id,
        "tcn": row.tcn,
        "kind": row.kind,
        "relayed": row.relayed,
        "received_at": row.received_at.isoformat(),
        "body": row.body,
    }


def booking_summary(row: Booking) -> dict[str, Any]:
    """A booking without its responses."""
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


async def booking_view(session: AsyncSession, tcn: str) -> dict[str, Any]:
    """A booking with every response received for it (relayed or not)."""
    row = await session.get(Booking, tcn)
    if row is None:
        raise NotFound(f"no booking with TCN {tcn!r}")
    responses = await session.scalars(
        select(ResponseRecord).where(ResponseRecord.tcn == tcn).order_by(ResponseRecord.id)
    )
    return {**booking_summary(row), "responses": [response_view(r) for r in responses]}


async def bookings(
    session: AsyncSession, *, status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """A page of bookings, oldest first."""
    query = select(Booking).order_by(Booking.accepted_at, Booking.tcn).limit(limit).offset(offset)
    if status:
        query = query.where(Booking.status == status)
    return [booking_summary(row) for row in await session.scalars(query)]


async def inbox(session: AsyncSession, ori: str, *, after: int, limit: int) -> list[dict[str, Any]]:
    """An LEA's inbox: the responses relayed to it, after a given id."""
    if await session.get(AgencyRecord, ori) is None:
        raise NotFound(f"no agency with ORI {ori!r}")
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


async def summary(session: AsyncSession) -> dict[str, Any]:
    """Counts the demo and dashboards need: bookings, transactions, relay, detainers, latency."""
    by_status = {
        s: int(n)
        for s, n in await session.execute(
            select(Booking.status, func.count()).group_by(Booking.status)
        )
    }
    by_tot = {
        t: int(n)
        for t, n in await session.execute(select(Booking.tot, func.count()).group_by(Booking.tot))
    }
    responses: dict[tuple[str, bool], int] = {
        (k, bool(r)): int(n)
        for k, r, n in await session.execute(
            select(ResponseRecord.kind, ResponseRecord.relayed, func.count()).group_by(
                ResponseRecord.kind, ResponseRecord.relayed
            )
        )
    }
    detainers = {"level_1": 0, "level_2": 0, "level_3": 0}
    for row in await session.scalars(select(ResponseRecord).where(ResponseRecord.kind == "I-247")):
        level = str(row.body.get("detainer", {}).get("level", ""))
        key = {"OFFENSE_LEVEL_1": "level_1", "OFFENSE_LEVEL_2": "level_2"}.get(level, "level_3")
        detainers[key] += 1
    latencies = sorted(
        (done - accepted).total_seconds() * 1000.0
        for accepted, done in await session.execute(
            select(Booking.accepted_at, Booking.completed_at).where(
                Booking.completed_at.is_not(None)
            )
        )
        if done is not None
    )
    idr_kinds = ("NO-MATCH-IDR", "IDR/IAR")
    return {
        "bookings": sum(by_status.values()),
        "by_status": by_status,
        "by_transaction": by_tot,
        "responses": {
            f"{k}:{'relayed' if r else 'not_relayed'}": n for (k, r), n in responses.items()
        },
        "relayed_to_lea": sum(n for (k, r), n in responses.items() if k in idr_kinds and r),
        "not_relayed": sum(n for (k, r), n in responses.items() if k in idr_kinds and not r),
        "detainers": detainers,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50), 1),
            "p99": round(_percentile(latencies, 0.99), 1),
        },
    }
