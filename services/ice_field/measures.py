"""The field offices' part of the Strategic Plan's measures: arrests, removals, custody, beds.

An ICE arrest is a detainer's subject taken into ICE custody or into Alternatives to Detention;
a criminal alien is one with a prior conviction (the IAR's prior conviction level), as charges
alone are not a conviction.

Bed use is counted in bed-days over the period the report covers: from `since` (or the first
custody) to the latest case step the field offices recorded, so the figure is the same whether
it is read from a running service or from its database after the federation stopped.

Each field office also reports its own Level 1 pickups and lapses (`office_<ORI>_...`): the
Criminal Alien Program at that office is one of the programs Goal 3.3 reviews.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CaseState, CaseStepRecord, DetainerRecord, FacilityRecord


async def counts(session: AsyncSession, since: datetime | None = None) -> dict[str, float]:
    """Case steps at or after `since` (the field offices' clock); beds as they stand now."""
    window: list[ColumnElement[bool]] = [] if since is None else [CaseStepRecord.at >= since]
    criminal = DetainerRecord.prior_conviction_level > 0

    async def steps(to_states: tuple[CaseState, ...], *where: ColumnElement[bool]) -> int:
        query = (
            select(func.count())
            .select_from(CaseStepRecord)
            .join(DetainerRecord, DetainerRecord.detainer_id == CaseStepRecord.detainer_id)
            .where(CaseStepRecord.to_state.in_(to_states), *window, *where)
        )
        return int(await session.scalar(query) or 0)

    arrests = (CaseState.IN_CUSTODY, CaseState.ATD)
    stays = (
        await session.execute(
            select(DetainerRecord.custody_started_at, DetainerRecord.custody_ended_at).where(
                criminal,
                DetainerRecord.custody_ended_at.is_not(None),
                *([] if since is None else [DetainerRecord.custody_ended_at >= since]),
            )
        )
    ).all()
    days = [(end - start).total_seconds() / 86400 for start, end in stays if start and end]
    held = [
        DetainerRecord.custody_started_at.is_not(None),
        DetainerRecord.custody_ended_at.is_(None),
    ]

    criminal_bed_days, bed_days = await _bed_days(session, since)

    async def detainers(*where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(DetainerRecord).where(*where)
        return int(await session.scalar(query) or 0)

    return {
        "alien_arrests": await steps(arrests),
        "criminal_alien_arrests": await steps(arrests, criminal),
        "level_1_criminal_alien_arrests": await steps(
            arrests, DetainerRecord.prior_conviction_level == 1
        ),
        "atd_eligible_arrests": await steps(arrests, DetainerRecord.atd_eligible.is_(True)),
        "atd_placements": await steps((CaseState.ATD,)),
        "removals": await steps((CaseState.REMOVED,)),
        "criminal_alien_removals": await steps((CaseState.REMOVED,), criminal),
        "level_1_criminal_alien_removals": await steps(
            (CaseState.REMOVED,), DetainerRecord.prior_conviction_level == 1
        ),
        "criminal_custody_stays_ended": len(days),
        "criminal_custody_days_total": round(sum(days), 3),
        "beds": int(
            await session.scalar(select(func.coalesce(func.sum(FacilityRecord.beds), 0))) or 0
        ),
        "beds_occupied": await detainers(*held),
        "beds_occupied_by_criminal_aliens": await detainers(*held, criminal),
        "criminal_alien_bed_days": criminal_bed_days,
        "bed_days_available": bed_days,
        "lapsed": await steps((CaseState.LAPSED,)),
        **await _per_office(session, window),
    }


async def _per_office(session: AsyncSession, window: list[ColumnElement[bool]]) -> dict[str, float]:
    """Each field office's Criminal Alien Program figures, for Goal 3.3's review of programs:
    `office_<ORI>_steps` (case steps in the period: the office had work to review), and of its
    Level 1 detainers, `office_<ORI>_level_1_taken` (the subject taken into ICE custody or ATD)
    and `office_<ORI>_level_1_lapsed` (the hold expired first: no pickup, or no bed)."""
    query = (
        select(
            DetainerRecord.field_office,
            CaseStepRecord.to_state,
            DetainerRecord.level,
            func.count(),
        )
        .select_from(CaseStepRecord)
        .join(DetainerRecord, DetainerRecord.detainer_id == CaseStepRecord.detainer_id)
        .where(*window)
        .group_by(DetainerRecord.field_office, CaseStepRecord.to_state, DetainerRecord.level)
    )
    result: dict[str, float] = {}
    for office, state, level, n in (await session.execute(query)).all():
        prefix = f"office_{office}"
        result[f"{prefix}_steps"] = result.get(f"{prefix}_steps", 0) + n
        if level != 1:
            continue
        if state in (CaseState.IN_CUSTODY, CaseState.ATD):
            key = f"{prefix}_level_1_taken"
        elif state == CaseState.LAPSED:
            key = f"{prefix}_level_1_lapsed"
        else:
            continue
        result[key] = result.get(key, 0) + n
    return result


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _bed_days(session: AsyncSession, since: datetime | None) -> tuple[float, float]:
    """Bed-days used by criminal aliens, and bed-days the facilities offered, in the period."""
    latest = await session.scalar(select(func.max(CaseStepRecord.at)))
    rows = (
        await session.execute(
            select(
                DetainerRecord.custody_started_at,
                DetainerRecord.custody_ended_at,
                DetainerRecord.prior_conviction_level,
            ).where(DetainerRecord.custody_started_at.is_not(None))
        )
    ).all()
    stays = [
        (_utc(began), None if ended is None else _utc(ended), bool(prior_level))
        for began, ended, prior_level in rows
        if began is not None
    ]
    if latest is None or not stays:
        return 0.0, 0.0
    end = _utc(latest)
    start = _utc(since) if since is not None else min(began for began, _, _ in stays)
    if end <= start:
        return 0.0, 0.0
    used = 0.0
    for began, ended, criminal in stays:
        if criminal:
            until = end if ended is None else min(end, ended)
            used += max(0.0, (until - max(began, start)).total_seconds()) / 86400
    beds = int(await session.scalar(select(func.coalesce(func.sum(FacilityRecord.beds), 0))) or 0)
    return round(used, 3), round(beds * (end - start).total_seconds() / 86400, 3)
