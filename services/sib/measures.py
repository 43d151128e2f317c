"""The SIB's part of the Strategic Plan's measures: bookings and what answered them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Booking, ResponseRecord


async def counts(session: AsyncSession, since: datetime | None = None) -> dict[str, float]:
    """Bookings accepted at or after `since` (SIB clock), and their interoperability answers."""
    window: list[ColumnElement[bool]] = [] if since is None else [Booking.accepted_at >= since]

    async def bookings(*where: ColumnElement[bool]) -> int:
        return int(await session.scalar(select(func.count()).where(*window, *where)) or 0)

    async def responses(kind: str) -> int:
        query = (
            select(func.count())
            .select_from(ResponseRecord)
            .join(Booking, Booking.tcn == ResponseRecord.tcn)
            .where(ResponseRecord.kind == kind, *window)
        )
        return int(await session.scalar(query) or 0)

    return {
        "bookings": await bookings(Booking.tcn.is_not(None)),
        "bookings_checked_against_ident": await bookings(Booking.expects_idr.is_(True)),
        "no_match_idr": await responses("NO-MATCH-IDR"),
        "joint_idr_iar": await responses("IDR/IAR"),
    }
