"""The field offices' metrics: detainers by level and case state, beds and Alternatives to
Detention in use against capacity, all offices together."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..runtime.metrics import ServiceMetrics, gauge, labelled_gauge
from . import cases
from .models import CaseState, DetainerRecord, FacilityRecord, FieldOfficeRecord

# The MOA's offense levels a detainer is issued at.
_LEVELS = (1, 2, 3)


def register(metrics: ServiceMetrics) -> None:
    """Adds the field offices' gauges, read from the database at each scrape."""
    metrics.read_at_scrape(field_families)


async def field_families(session: AsyncSession) -> list[Metric]:
    """Detainers by level and state; beds and ATD slots, and how many are in use."""
    detainers: dict[tuple[str, ...], float] = {
        (str(level), str(state)): 0.0 for level in _LEVELS for state in CaseState
    }
    rows = await session.execute(
        select(DetainerRecord.level, DetainerRecord.state, func.count()).group_by(
            DetainerRecord.level, DetainerRecord.state
        )
    )
    detainers.update({(str(level), str(state)): float(n) for level, state, n in rows})

    async def count(*where: ColumnElement[bool]) -> float:
        query = select(func.count()).select_from(DetainerRecord).where(*where)
        return float(await session.scalar(query) or 0)

    beds = await session.scalar(select(func.coalesce(func.sum(FacilityRecord.beds), 0)))
    slots = await session.scalar(select(func.coalesce(func.sum(FieldOfficeRecord.atd_slots), 0)))
    held = await count(
        DetainerRecord.custody_started_at.is_not(None), DetainerRecord.custody_ended_at.is_(None)
    )
    on_atd = await count(
        DetainerRecord.on_atd.is_(True), DetainerRecord.state.not_in(cases.TERMINAL)
    )
    return [
        labelled_gauge(
            "scfed_ice_field_detainers",
            "Detainers (I-247) by offense level and the state of their removal case",
            ["level", "state"],
            detainers,
        ),
        gauge("scfed_ice_field_beds", "Beds in the field offices' facilities", float(beds or 0)),
        gauge(
            "scfed_ice_field_beds_occupied",
            "People held in a bed: in ICE custody, not yet removed or released",
            held,
        ),
        gauge(
            "scfed_ice_field_atd_slots",
            "People the field offices can supervise in Alternatives to Detention at once",
            float(slots or 0),
        ),
        gauge(
            "scfed_ice_field_atd_in_use",
            "People supervised in Alternatives to Detention whose case is still open",
            on_atd,
        ),
    ]
