"""LESC's metrics: the desk's queue by route, the answers late against their target, the cases
overdue now, and the analysts on duty."""

from __future__ import annotations

from prometheus_client import Gauge
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..runtime.metrics import ServiceMetrics, gauge, labelled_gauge
from .desk import analysts_on_duty
from .domain import StatusDeterminationCenter
from .models import CaseRecord, CaseState, Route

# The states of a case still on the desk.
_OPEN = (CaseState.QUEUED, CaseState.IN_WORK)


def register(metrics: ServiceMetrics, center: StatusDeterminationCenter) -> None:
    """Adds the desk's gauges: read from the database at each scrape, and the analysts on
    duty now (agency time) from the shifts."""

    async def desk(session: AsyncSession) -> list[Metric]:
        return await desk_families(session, center)

    metrics.read_at_scrape(desk)
    Gauge(
        "scfed_lesc_analysts_on_duty",
        "Analysts on duty now (agency time), as the configured shifts say",
        registry=metrics.registry,
    ).set_function(lambda: float(analysts_on_duty(center.shifts, center.clock.now())))


async def desk_families(session: AsyncSession, center: StatusDeterminationCenter) -> list[Metric]:
    """The desk's queue by route and state, answered cases by lateness, cases overdue now."""
    queue: dict[tuple[str, ...], float] = {
        (str(route), str(state)): 0.0 for route in Route for state in _OPEN
    }
    rows = await session.execute(
        select(CaseRecord.route, CaseRecord.state, func.count())
        .where(CaseRecord.state.in_(_OPEN))
        .group_by(CaseRecord.route, CaseRecord.state)
    )
    queue.update({(str(route), str(state)): float(n) for route, state, n in rows})
    answered: dict[tuple[str, ...], float] = {("false",): 0.0, ("true",): 0.0}
    lateness = await session.execute(
        select(CaseRecord.late, func.count())
        .where(CaseRecord.state == CaseState.ANSWERED)
        .group_by(CaseRecord.late)
    )
    answered.update({(str(bool(late)).lower(),): float(n) for late, n in lateness})
    overdue = await session.scalar(
        select(func.count()).where(
            CaseRecord.state.in_(_OPEN), CaseRecord.due_at < center.clock.now()
        )
    )
    target = center.policy.target.total_seconds()
    return [
        labelled_gauge(
            "scfed_lesc_queue_length",
            "Cases on the desk by route (automated, analyst, vtc) and state (queued, in_work)",
            ["route", "state"],
            queue,
        ),
        labelled_gauge(
            "scfed_lesc_answered_cases",
            f"Cases answered, by whether the IAR went after its target ({target:g} s of "
            "agency time after receipt)",
            ["late"],
            answered,
        ),
        gauge(
            "scfed_lesc_overdue_cases",
            "Cases not answered yet whose target time (agency time) has passed",
            float(overdue or 0),
        ),
    ]
