"""Control of a running service, whatever edge asks: step its manual clock, re-pace its
accelerated clock, reset it to its configuration. The HTTP routes (admin.py) and the gRPC
AdminService (admin_servicer.py) both call these functions and only translate their answers
and their DomainErrors (InvalidArgument: 422 / INVALID_ARGUMENT; FailedPrecondition: 409 /
FAILED_PRECONDITION).

A reset empties every table the service holds (its own and the runtime's outbox, inbox and
journal), lets the provider empty what it keeps in memory (the biometric indexes) and clears
the fault rules. The clock's anchor stays: agency time is configuration, and a manual clock only
moves forward. The audit trail stays too (audit.py: its records are never deleted), and gains a
record of the reset, naming who asked.
Settings, servers and peer channels are untouched, so the service answers again at once. A
reset is meant for a quiet federation (between tests): a booking in flight while it runs may
leave a half-done exchange behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import MetaData, Table, delete
from sqlalchemy.ext.asyncio import AsyncSession

from . import audit
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
from .errors import FailedPrecondition, InvalidArgument
from .models import AuditRecord, ClockEpoch, RuntimeBase

if TYPE_CHECKING:
    from .server import Runtime, ServiceProvider


class ClockView(BaseModel):
    """A service's agency clock after a change."""

    service: str
    clock: str
    now: str


class ResetReport(BaseModel):
    """What a reset removed, table by table, and how long it took."""

    service: str
    deleted: dict[str, int]
    faults_cleared: int = 0
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


def _clock_variable(provider: ServiceProvider) -> str:
    return f"SCFED_{provider.name.upper()}_CLOCK"


def advance_clock(
    provider: ServiceProvider,
    runtime: Runtime,
    *,
    seconds: float | None = None,
    duration: str | None = None,
) -> ClockView:
    """Steps a manual clock forward by `seconds` or `duration` (exactly one): InvalidArgument
    for a bad, negative or over-long step, FailedPrecondition on another clock."""
    if (seconds is None) == (duration is None):
        raise InvalidArgument('give exactly one of "seconds" and "duration"')
    try:
        span = step_of(seconds) if seconds is not None else parse_duration(duration or "")
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc
    clock = runtime.clock
    if not isinstance(clock, ManualClock):
        raise FailedPrecondition(
            f"{provider.name} runs the {clock_kind(clock)} clock; only a manual clock can "
            f"be stepped (start it with {_clock_variable(provider)}=manual)"
        )
    now = clock.advance(span)
    return ClockView(service=provider.name, clock=clock_kind(clock), now=now.isoformat())


async def set_clock(provider: ServiceProvider, runtime: Runtime, spec: str) -> ClockView:
    """Re-paces an accelerated clock from the current agency time: InvalidArgument for a bad
    spec, FailedPrecondition for any other change (the service's parts hold its clock)."""
    try:
        wanted = clock_from_spec(spec)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc
    clock = runtime.clock
    if not isinstance(wanted, AcceleratedClock) or not isinstance(clock, AcceleratedClock):
        raise FailedPrecondition(
            f"{provider.name} runs the {clock_kind(clock)} clock; at runtime only an "
            f"accelerated clock changes, and only its factor (restart with "
            f"{_clock_variable(provider)}={spec.strip()} to change its kind)"
        )
    now = await change_factor(runtime.db, clock, wanted.factor)
    return ClockView(service=provider.name, clock=clock_kind(clock), now=now.isoformat())


# Tables a reset does not empty and a snapshot does not hold.
_KEPT_TABLES = frozenset({ClockEpoch.__tablename__, AuditRecord.__tablename__})


def service_tables(provider: ServiceProvider) -> Iterator[Table]:
    """Every table a reset or a snapshot covers, parents before children: the service's own
    and the runtime's, but neither the clock's anchor (configuration) nor the audit trail
    (never deleted, never replaced)."""
    metadatas: tuple[MetaData, ...] = (*provider.metadatas, RuntimeBase.metadata)
    for metadata in metadatas:
        for table in metadata.sorted_tables:
            if table.name not in _KEPT_TABLES:
                yield table


async def empty_tables(session: AsyncSession, provider: ServiceProvider) -> dict[str, int]:
    """Deletes every row of the service's tables in the caller's transaction; counts them."""
    deleted: dict[str, int] = {}
    # Children before parents, so foreign keys never refuse a delete.
    for table in reversed(list(service_tables(provider))):
        result = await session.execute(delete(table))
        deleted[table.name] = max(0, result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted


async def reset_service(
    provider: ServiceProvider, runtime: Runtime, *, who: str = "unknown"
) -> ResetReport:
    """Empties every table of the service (the clock's anchor and the audit trail excepted)
    and its in-memory state, clears its fault rules, and audits the reset as `who`'s. The
    delivery worker keeps running: a round that claimed a row before the reset finds it gone
    when it settles, and skips it."""
    started = time.perf_counter()
    async with runtime.db.session() as session:
        deleted = await empty_tables(session, provider)
        audit.record(
            session,
            who=who,
            rpc="Reset",
            tcn="",
            purpose=audit.Purpose.ADMINISTRATIVE,
            outcome=audit.AuditOutcome.RESET,
            detail=f"{sum(deleted.values())} rows removed",
        )
    await provider.on_reset(runtime)
    return ResetReport(
        service=provider.name,
        deleted=deleted,
        faults_cleared=runtime.faults.clear(),
        seconds=round(time.perf_counter() - started, 4),
    )
