"""The SIB's part of the Strategic Plan's measures: bookings and what answered them, and, where
a rollout plan registered its phases, each phase's jurisdictions and bookings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import AgencyRecord, Booking, ResponseRecord


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
        **await _rollout_counts(session, window),
        "bookings": await bookings(Booking.tcn.is_not(None)),
        "bookings_checked_against_ident": await bookings(Booking.expects_idr.is_(True)),
        "no_match_idr": await responses("NO-MATCH-IDR"),
        "joint_idr_iar": await responses("IDR/IAR"),
    }


async def _rollout_counts(
    session: AsyncSession, window: list[ColumnElement[bool]]
) -> dict[str, float]:
    """Per rollout phase n (0: jurisdictions no phase activates), `rollout_phase_<n>_...`:
    jurisdictions, their summed criminal_alien_share (0..1), first and last activation day
    (YYYYMMDD as a number, 0 when none), bookings and those checked against IDENT. Nothing
    when no agency has a rollout phase."""
    phase = func.coalesce(AgencyRecord.rollout_phase, 0)
    agencies = (
        await session.execute(
            select(
                phase,
                func.count(),
                func.sum(func.coalesce(AgencyRecord.criminal_alien_share, 0.0)),
                func.min(func.nullif(AgencyRecord.activated_on, "")),
                func.max(func.nullif(AgencyRecord.activated_on, "")),
            ).group_by(phase)
        )
    ).all()
    if not any(row[0] for row in agencies):
        return {}
    result: dict[str, float] = {}
    for n, count, share, first, last in agencies:
        key = f"rollout_phase_{n}"
        result[f"{key}_jurisdictions"] = float(count)
        result[f"{key}_criminal_alien_share"] = float(share or 0.0)
        result[f"{key}_first_activation"] = float(first or 0)
        result[f"{key}_last_activation"] = float(last or 0)
        result[f"{key}_bookings"] = 0.0
        result[f"{key}_bookings_checked_against_ident"] = 0.0
    booked = await session.execute(
        select(phase, Booking.expects_idr, func.count())
        .select_from(Booking)
        .join(AgencyRecord, AgencyRecord.ori == Booking.ori)
        .where(*window)
        .group_by(phase, Booking.expects_idr)
    )
    for n, checked, count in booked:
        key = f"rollout_phase_{n}"
        result[f"{key}_bookings"] += count
        if checked:
            result[f"{key}_bookings_checked_against_ident"] += count
    return result
