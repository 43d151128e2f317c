"""The field offices' part of the Strategic Plan's measures: arrests, removals, custody, beds.

An ICE arrest is a detainer's subject taken into ICE custody or into Alternatives to Detention;
a criminal alien is one with a prior conviction (the IAR's prior conviction level), as charges
alone are not a conviction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ice_field import cases
from services.ice_field.models import CaseStepRecord, DetainerRecord, FacilityRecord


async def counts(session: AsyncSession, since: datetime | None = None) -> dict[str, float]:
    """Case steps at or after `since` (the field offices' clock); beds as they stand now."""
    window: list[ColumnElement[bool]] = [] if since is None else [CaseStepRecord.at >= since]
    criminal = DetainerRecord.prior_conviction_level > 0

    async def steps(to_states: tuple[str, ...], *where: ColumnElement[bool]) -> int:
        query = (
            select(func.count())
            .select_from(CaseStepRecord)
            .join(DetainerRecord, DetainerRecord.detainer_id == CaseStepRecord.detainer_id)
            .where(CaseStepRecord.to_state.in_(to_states), *window, *where)
        )
        return int(await session.scalar(query) or 0)

    arrests = (cases.IN_CUSTODY, cases.ATD)
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
        "atd_placements": await steps((cases.ATD,)),
        "removals": await steps((cases.REMOVED,)),
        "criminal_alien_removals": await steps((cases.REMOVED,), criminal),
        "level_1_criminal_alien_removals": await steps(
            (cases.REMOVED,), DetainerRecord.prior_conviction_level == 1
        ),
        "criminal_custody_stays_ended": len(days),
        "criminal_custody_days_total": round(sum(days), 3),
        "beds": int(
            await session.scalar(select(func.coalesce(func.sum(FacilityRecord.beds), 0))) or 0
        ),
        "beds_occupied": await detainers(*held),
        "beds_occupied_by_criminal_aliens": await detainers(*held, criminal),
        "lapsed": await steps((cases.LAPSED,)),
    }
