"""The accelerated clock's anchor in the service's database, so replicas agree on agency time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select

from .clock import AcceleratedClock
from .db import Database
from .models import ClockEpoch

log = logging.getLogger(__name__)

AGENCY = "agency"


async def share_epoch(db: Database, clock: AcceleratedClock) -> ClockEpoch:
    """Aligns `clock` to the anchor stored in `db`, storing this clock's own first.

    The first replica to start writes its anchor; the others (and later restarts) read it. A
    replica started with another factor re-anchors at the current agency time, so agency time
    never jumps back.
    """
    wall_now = datetime.now(UTC)
    async with db.session() as session:
        await session.execute(
            db.insert_ignoring_conflicts(ClockEpoch.__table__, ["name"]).values(
                name=AGENCY, factor=clock.factor, wall_epoch=wall_now, agency_epoch=clock.now()
            )
        )
        row = await session.scalar(
            select(ClockEpoch).where(ClockEpoch.name == AGENCY).with_for_update()
        )
        assert row is not None
        if row.factor != clock.factor:
            agency_now = row.agency_epoch + (wall_now - row.wall_epoch) * row.factor
            log.warning(
                "agency clock factor changes from %g to %g; re-anchored at %s",
                row.factor,
                clock.factor,
                agency_now.isoformat(),
            )
            row.factor, row.wall_epoch, row.agency_epoch = clock.factor, wall_now, agency_now
        clock.align(agency_epoch=row.agency_epoch, wall_epoch=row.wall_epoch)
        return row
