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


async def change_factor(db: Database, clock: AcceleratedClock, factor: float) -> datetime:
    """Runs `clock` at `factor` from the current agency time and stores the new anchor, so a
    replica that starts later agrees; returns the agency time of the change. Replicas already
    running keep their own pace until they restart."""
    agency_now = clock.set_factor(factor)
    wall_now = datetime.now(UTC)
    clock.align(agency_epoch=agency_now, wall_epoch=wall_now)
    async with db.session() as session:
        row = await session.get(ClockEpoch, AGENCY, with_for_update=True)
        if row is None:
            session.add(
                ClockEpoch(name=AGENCY, factor=factor, wall_epoch=wall_now, agency_epoch=agency_now)
            )
        else:
            row.factor, row.wall_epoch, row.agency_epoch = factor, wall_now, agency_now
    return agency_now
