"""LESC's 24x7 desk: which path an IAQ takes, and how many analysts are on duty when.

Paths: an automated determination answers at once when IDENT's data suffice (a high-confidence
status rule and a strong biometric match); a weak biometric record, or no status at all, needs
a VTC interview; everything else goes to an analyst. Analysts work in shifts; an analyst or VTC
case holds one analyst for its handling time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .determination import Determination
from .models import Route


@dataclass(frozen=True)
class Shift:
    """From `start_minute` (minutes after midnight, agency time) `analysts` are on duty."""

    start_minute: int
    analysts: int


def parse_shifts(spec: str) -> tuple[Shift, ...]:
    """Reads "06:00=6,14:00=4,22:00=2": each shift's start and its analysts on duty."""
    shifts = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*([01]\d|2[0-3]):([0-5]\d)=(\d+)\s*", part)
        if match is None:
            raise ValueError(f"bad shift {part!r}; write HH:MM=<analysts>, comma-separated")
        hours, minutes, analysts = (int(g) for g in match.groups())
        shifts.append(Shift(hours * 60 + minutes, analysts))
    if not shifts:
        raise ValueError("at least one shift is required")
    starts = [s.start_minute for s in shifts]
    if len(set(starts)) != len(starts):
        raise ValueError("two shifts start at the same time")
    return tuple(sorted(shifts, key=lambda s: s.start_minute))


def analysts_on_duty(shifts: tuple[Shift, ...], at: datetime) -> int:
    """How many analysts work at a given agency time (the last shift wraps past midnight)."""
    minute = at.hour * 60 + at.minute
    current = shifts[-1]
    for shift in shifts:
        if shift.start_minute <= minute:
            current = shift
    return current.analysts


@dataclass(frozen=True)
class DeskPolicy:
    """Routing thresholds, handling times and the answer target."""

    auto_min_score: float = 0.7
    vtc_below_score: float = 0.6
    analyst_time: timedelta = timedelta(minutes=20)
    vtc_time: timedelta = timedelta(minutes=45)
    target: timedelta = timedelta(hours=2)

    def route(self, determination: Determination, match_score: float) -> Route:
        """The path an IAQ takes."""
        if determination.status == "UNSPECIFIED" or match_score < self.vtc_below_score:
            return Route.VTC
        if determination.confidence == "high" and match_score >= self.auto_min_score:
            return Route.AUTOMATED
        return Route.ANALYST

    def handling(self, route: Route) -> timedelta:
        """How long a case holds an analyst."""
        return self.vtc_time if route == Route.VTC else self.analyst_time
