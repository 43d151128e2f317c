"""LESC's part of the Strategic Plan's measures: aliens identified and answers in time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CaseRecord

CITIZEN_STATUSES = ("NATURALIZED_CITIZEN", "UNSPECIFIED", "")


async def counts(session: AsyncSession, since: datetime | None = None) -> dict[str, float]:
    """IAQs received at or after `since` (LESC's clock) and how they were answered."""
    window: list[ColumnElement[bool]] = [] if since is None else [CaseRecord.received_at >= since]

    async def cases(*where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(CaseRecord).where(*window, *where)
        return int(await session.scalar(query) or 0)

    alien = CaseRecord.status.not_in(CITIZEN_STATUSES)
    level_1 = or_(CaseRecord.current_charge_level == 1, CaseRecord.prior_conviction_level == 1)
    return {
        "iaq": await cases(),
        "iar": await cases(CaseRecord.answered_at.is_not(None)),
        "iar_late": await cases(CaseRecord.answered_at.is_not(None), CaseRecord.late.is_(True)),
        "aliens_identified": await cases(alien),
        "level_1_aliens_identified": await cases(alien, level_1),
        # Goal 3.3 reviews LESC against its priority: Level 1 subjects answered in time.
        "level_1_iar": await cases(CaseRecord.answered_at.is_not(None), level_1),
        "level_1_iar_late": await cases(
            CaseRecord.answered_at.is_not(None), CaseRecord.late.is_(True), level_1
        ),
    }
