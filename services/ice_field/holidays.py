"""Business time for the I-247 hold: no Saturdays, Sundays or federal holidays.

The I-247 asks an LEA to hold a subject "not longer than 48 hours, excluding Saturdays, Sundays,
and holidays". Federal holidays follow 5 U.S.C. 6103 with the observed-date rule (a holiday on a
Saturday is observed the Friday before, on a Sunday the Monday after); Juneteenth counts from
2021, when it became a federal holiday.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Monday 0) of a month; n = -1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@functools.cache
def federal_holidays(year: int) -> frozenset[date]:
    """The federal holidays observed in a year."""
    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    if year >= 2021:
        fixed.append(date(year, 6, 19))
    floating = [
        _nth_weekday(year, 1, 0, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    ]
    observed = {_observed(d) for d in fixed} | set(floating)
    # New Year's Day of the next year on a Saturday is observed on December 31 of this one.
    if date(year + 1, 1, 1).weekday() == 5:
        observed.add(date(year, 12, 31))
    return frozenset(observed)


def is_business_day(day: date) -> bool:
    """Neither a Saturday, a Sunday nor a federal holiday."""
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def add_business_hours(start: datetime, hours: float) -> datetime:
    """The moment `hours` of business time after `start` (weekends and holidays don't count)."""
    if hours < 0:
        raise ValueError("hours must not be negative")
    remaining = timedelta(hours=hours)
    current = start
    while True:
        day = current.date()
        midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=current.tzinfo)
        if is_business_day(day):
            available = midnight - current
            if remaining <= available:
                return current + remaining
            remaining -= available
        current = midnight
