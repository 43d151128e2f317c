"""One clock for all agency time: real, accelerated, or stepped by hand in tests."""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from .errors import shown


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

    def set_factor(self, factor: float) -> datetime:
        """Runs `factor` times faster from now on, going on from the current agency time (no
        jump); returns that time. A sleep already under way keeps the old pace."""
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"clock acceleration factor must be positive and finite, got {factor}")
        now = self.now()
        self._epoch, self._start, self.factor = now, time.monotonic(), factor
        return now

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
            raise ValueError(f"bad clock spec {shown(spec)}: {str(exc)[:80]}") from exc
    if kind == "manual":
        start = datetime.fromisoformat(arg) if arg else None
        if start is not None:
            start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        return ManualClock(start)
    raise ValueError(
        f"bad clock spec {shown(spec)}; use real, accelerated:<factor> or manual[:<start>]"
    )


# The longest single step of agency time a caller may ask for: longer than any hold, notice or
# removal case the federation models, short enough that a typo (a year in seconds) is refused.
MAX_STEP = timedelta(days=3650)

_ISO_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_SHORT_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>[wdhms])")
# No duration is longer; a longer text is refused before the patterns (whose search is
# quadratic in a long run of digits) see it.
MAX_DURATION_CHARS = 64
_UNIT_SECONDS = {
    "weeks": 604_800.0,
    "days": 86_400.0,
    "hours": 3_600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}
_SHORT_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """A span of agency time from ISO 8601 ("P2D", "PT48H", "P1DT30M", "P1W") or the short
    form ("48h", "30d", "1d12h", "90s"). Years and months are refused: their length varies."""
    value = text.strip()
    if len(value) > MAX_DURATION_CHARS:
        raise ValueError(f"bad duration {shown(text)}: at most {MAX_DURATION_CHARS} characters")
    iso = _ISO_DURATION.fullmatch(value.upper())
    if iso is not None and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        return step_of(
            sum(float(v) * _UNIT_SECONDS[k] for k, v in iso.groupdict().items() if v is not None)
        )
    pieces = list(_SHORT_DURATION.finditer(value.lower()))
    if pieces and "".join(p.group(0) for p in pieces) == value.lower():
        return step_of(
            sum(float(p["value"]) * _UNIT_SECONDS[_SHORT_UNITS[p["unit"]]] for p in pieces)
        )
    raise ValueError(
        f"bad duration {shown(text)}; use ISO 8601 days and time (P2D, PT48H, P1DT30M, P1W) or "
        "a short form (48h, 30d, 1d12h, 90s); years and months are not fixed lengths"
    )


def step_of(seconds: float) -> timedelta:
    """A step of `seconds` that a clock may take: finite, not negative, at most MAX_STEP."""
    if not math.isfinite(seconds):
        raise ValueError(f"a clock step must be a finite number of seconds, got {seconds}")
    if seconds < 0:
        raise ValueError(f"a clock only moves forward; got a step of {seconds:g} seconds")
    if seconds > MAX_STEP.total_seconds():
        raise ValueError(
            f"a step of {seconds:g} seconds is longer than the most allowed, {MAX_STEP.days} days"
        )
    return timedelta(seconds=seconds)
