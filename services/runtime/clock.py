"""One clock for all agency time: real, accelerated, or stepped by hand in tests."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Agency time. Machine latency (timeouts, retries) never goes through it."""

    def now(self) -> datetime:
        """Returns the current agency time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Waits for the given span of agency time."""
        ...


class RealClock:
    """Agency time is wall-clock time."""

    def now(self) -> datetime:
        """Returns the wall-clock time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleeps for real."""
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Agency time runs `factor` times faster than the wall clock, from a given epoch."""

    def __init__(self, factor: float, *, epoch: datetime | None = None) -> None:
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"clock acceleration factor must be positive and finite, got {factor}")
        self.factor = factor
        self._epoch = epoch or datetime.now(UTC)
        self._start = time.monotonic()

    def now(self) -> datetime:
        """Returns the accelerated agency time."""
        elapsed = (time.monotonic() - self._start) * self.factor
        return self._epoch + timedelta(seconds=elapsed)

    def align(self, *, agency_epoch: datetime, wall_epoch: datetime) -> None:
        """Runs from a shared anchor: agency time was `agency_epoch` at wall time `wall_epoch`,
        so every replica that aligns to the same anchor tells the same agency time."""
        wall_now = datetime.now(UTC)
        self._start = time.monotonic()
        self._epoch = agency_epoch + (wall_now - wall_epoch) * self.factor

    async def sleep(self, seconds: float) -> None:
        """Sleeps for `seconds` of agency time, that is seconds/factor of wall time."""
        await asyncio.sleep(max(0.0, seconds) / self.factor)


class ManualClock:
    """Agency time moves only when a test advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2009, 10, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        """Returns the stepped agency time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Moves agency time forward and wakes every sleeper whose time has come."""
        if delta < timedelta(0):
            raise ValueError("a manual clock only moves forward")
        with self._lock:
            self._now += delta
            now = self._now
        self._changed.set()
        self._changed = asyncio.Event()
        return now

    async def sleep(self, seconds: float) -> None:
        """Waits until the clock has been advanced past now + seconds."""
        deadline = self.now() + timedelta(seconds=seconds)
        while self.now() < deadline:
            await self._changed.wait()


def clock_from_spec(spec: str) -> Clock:
    """Builds a clock from "real", "accelerated:<factor>" or "manual[:<ISO start>]"."""
    kind, _, arg = spec.strip().partition(":")
    if kind == "real" and not arg:
        return RealClock()
    if kind == "accelerated":
        try:
            return AcceleratedClock(float(arg))
        except ValueError as exc:
            raise ValueError(f"bad clock spec {spec!r}: {exc}") from exc
    if kind == "manual":
        start = datetime.fromisoformat(arg) if arg else None
        if start is not None:
            start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        return ManualClock(start)
    raise ValueError(f"bad clock spec {spec!r}; use real, accelerated:<factor> or manual[:<start>]")
