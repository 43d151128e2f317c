"""Control of a running service over its HTTP edge, for tests and scenario runners: step its
manual clock, re-pace its accelerated clock, and reset it to its configuration.

A reset empties every table the service holds (its own and the runtime's outbox, inbox and
journal) and then lets the provider empty what it keeps in memory (the biometric indexes). The
clock's anchor stays: agency time is configuration, and a manual clock only moves forward.
Settings, servers and peer channels are untouched, so the service answers again at once. A
reset is meant for a quiet federation (between tests): a booking in flight while it runs may
leave a half-done exchange behind.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete

from .clock import (
    AcceleratedClock,
    Clock,
    ManualClock,
    RealClock,
    clock_from_spec,
    parse_duration,
    step_of,
)
from .clock_epoch import change_factor
from .models import ClockEpoch, RuntimeBase

if TYPE_CHECKING:
    from .server import Runtime, ServiceProvider


class ClockStep(BaseModel):
    """How far to step a manual clock: `seconds`, or an ISO 8601 / short `duration`."""

    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(default=None, description="Seconds of agency time.")
    duration: str | None = Field(
        default=None, description='ISO 8601 ("P2D", "PT48H") or short ("48h", "30d").'
    )


class ClockChange(BaseModel):
    """The clock a service should run on, as a spec (only "accelerated:<factor>" is accepted
    at runtime, on a service that already runs an accelerated clock)."""

    model_config = ConfigDict(extra="forbid")

    spec: str


class ClockView(BaseModel):
    """A service's agency clock after a change."""

    service: str
    clock: str
    now: str


class ResetReport(BaseModel):
    """What a reset removed, table by table, and how long it took."""

    service: str
    deleted: dict[str, int]
    seconds: float


def clock_kind(clock: Clock) -> str:
    """The spec-like name of a clock: "real", "accelerated:<factor>", "manual" or its class."""
    if isinstance(clock, RealClock):
        return "real"
    if isinstance(clock, AcceleratedClock):
        return f"accelerated:{clock.factor:g}"
    if isinstance(clock, ManualClock):
        return "manual"
    return type(clock).__name__


async def reset_service(provider: ServiceProvider, runtime: Runtime) -> ResetReport:
    """Empties every table of the service (the clock's anchor excepted) and its in-memory
    state. The delivery worker keeps running: a round that claimed a row before the reset
    finds it gone when it settles, and skips it."""
    started = time.perf_counter()
    deleted: dict[str, int] = {}
    async with runtime.db.session() as session:
        for metadata in (*provider.metadatas, RuntimeBase.metadata):
            # Children before parents, so foreign keys never refuse a delete.
            for table in reversed(metadata.sorted_tables):
                if table.name == ClockEpoch.__tablename__:
                    continue
                result = await session.execute(delete(table))
                deleted[table.name] = max(0, result.rowcount or 0)  # type: ignore[attr-defined]
    await provider.on_reset(runtime)
    return ResetReport(
        service=provider.name, deleted=deleted, seconds=round(time.perf_counter() - started, 4)
    )


def admin_router(provider: ServiceProvider, runtime: Runtime) -> APIRouter:
    """The control routes every service's HTTP edge carries: clock steps, clock pace, reset."""
    router = APIRouter(tags=["control"])
    variable = f"SCFED_{provider.name.upper()}_CLOCK"

    @router.post("/v1/clock/advance")
    async def clock_advance(step: ClockStep) -> ClockView:
        """Steps a manual clock forward: 422 for a bad, negative or over-long step (at most
        3650 days), 409 when the service runs another clock."""
        if (step.seconds is None) == (step.duration is None):
            raise HTTPException(422, 'give exactly one of "seconds" and "duration"')
        try:
            span = step_of(step.seconds) if step.seconds is not None else None
            span = span if span is not None else parse_duration(step.duration or "")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        clock = runtime.clock
        if not isinstance(clock, ManualClock):
            raise HTTPException(
                409,
                f"{provider.name} runs the {clock_kind(clock)} clock; only a manual clock can "
                f"be stepped (start it with {variable}=manual)",
            )
        now = clock.advance(span)
        return ClockView(service=provider.name, clock=clock_kind(clock), now=now.isoformat())

    @router.post("/v1/clock")
    async def clock_set(change: ClockChange) -> ClockView:
        """Re-paces an accelerated clock from the current agency time: 422 for a bad spec, 409
        for any other change (the service's parts hold its clock; restart to change kind)."""
        try:
            wanted = clock_from_spec(change.spec)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        clock = runtime.clock
        if not isinstance(wanted, AcceleratedClock) or not isinstance(clock, AcceleratedClock):
            raise HTTPException(
                409,
                f"{provider.name} runs the {clock_kind(clock)} clock; at runtime only an "
                f"accelerated clock changes, and only its factor (restart with {variable}="
                f"{change.spec.strip()} to change its kind)",
            )
        now = await change_factor(runtime.db, clock, wanted.factor)
        return ClockView(service=provider.name, clock=clock_kind(clock), now=now.isoformat())

    @router.post("/v1/admin/reset")
    async def admin_reset() -> ResetReport:
        """Empties the service back to its configuration; says what it removed."""
        return await reset_service(provider, runtime)

    return router
