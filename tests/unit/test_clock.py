"""Agency time: the real clock, the accelerated one, the hand-stepped one, and the spec that
picks one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from services.runtime.clock import (
    MAX_STEP,
    AcceleratedClock,
    ManualClock,
    RealClock,
    clock_from_spec,
    parse_duration,
    step_of,
)

EPOCH = datetime(2009, 10, 27, 9, 0, tzinfo=UTC)


def test_the_real_clock_tells_wall_time_in_utc() -> None:
    before = datetime.now(UTC)
    now = RealClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_the_real_clock_sleeps_for_real_and_not_at_all_for_a_negative_span() -> None:
    async def scenario() -> tuple[float, float]:
        clock = RealClock()
        start = time.monotonic()
        await clock.sleep(0.02)
        slept = time.monotonic() - start
        start = time.monotonic()
        await asyncio.wait_for(clock.sleep(-5), timeout=1)
        return slept, time.monotonic() - start

    slept, skipped = asyncio.run(scenario())
    assert slept >= 0.015
    assert skipped < 0.5


def test_the_accelerated_clock_starts_at_its_epoch_and_runs_factor_times_faster() -> None:
    clock = AcceleratedClock(3600.0, epoch=EPOCH)
    first = clock.now()
    assert EPOCH <= first < EPOCH + timedelta(minutes=10)
    time.sleep(0.02)
    elapsed = clock.now() - first
    # 0.02 s of wall time is at least 72 s of agency time at 3600x.
    assert elapsed >= timedelta(seconds=60)
    assert elapsed < timedelta(days=1)


def test_an_accelerated_sleep_spans_the_agency_time_asked_for_in_a_fraction_of_wall_time() -> None:
    async def scenario() -> tuple[timedelta, float]:
        clock = AcceleratedClock(36_000.0, epoch=EPOCH)
        before, wall = clock.now(), time.monotonic()
        await clock.sleep(360)
        return clock.now() - before, time.monotonic() - wall

    agency, wall = asyncio.run(scenario())
    assert agency >= timedelta(seconds=360)
    assert wall < 1.0


def test_the_accelerated_clock_defaults_its_epoch_to_now() -> None:
    before = datetime.now(UTC)
    now = AcceleratedClock(1.0).now()
    assert before <= now <= datetime.now(UTC) + timedelta(seconds=1)


@pytest.mark.parametrize("factor", [0.0, -1.0])
def test_an_acceleration_factor_that_is_not_positive_is_refused(factor: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        AcceleratedClock(factor)


def test_a_manual_clock_starts_on_activation_day_and_stands_still_until_advanced() -> None:
    clock = ManualClock()
    assert clock.now() == datetime(2009, 10, 1, 12, 0, tzinfo=UTC)
    time.sleep(0.01)
    assert clock.now() == datetime(2009, 10, 1, 12, 0, tzinfo=UTC)
    assert ManualClock(EPOCH).now() == EPOCH


def test_advancing_a_manual_clock_adds_up_and_returns_the_new_time() -> None:
    clock = ManualClock(EPOCH)
    assert clock.advance(timedelta(hours=2)) == EPOCH + timedelta(hours=2)
    assert clock.advance(timedelta(0)) == EPOCH + timedelta(hours=2)
    assert clock.advance(timedelta(days=1, seconds=5)) == EPOCH + timedelta(
        days=1, hours=2, seconds=5
    )
    assert clock.now() == EPOCH + timedelta(days=1, hours=2, seconds=5)


def test_a_manual_clock_never_moves_backwards() -> None:
    clock = ManualClock(EPOCH)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(microseconds=-1))
    assert clock.now() == EPOCH


def test_a_manual_sleep_ends_only_once_the_clock_reaches_its_deadline() -> None:
    async def scenario() -> None:
        clock = ManualClock(EPOCH)
        short = asyncio.create_task(clock.sleep(60))
        long = asyncio.create_task(clock.sleep(120))
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert not short.done() and not long.done()
        clock.advance(timedelta(seconds=59))
        await asyncio.sleep(0.01)
        assert not short.done()
        clock.advance(timedelta(seconds=1))
        await asyncio.wait_for(short, timeout=1)
        await asyncio.sleep(0.01)
        assert not long.done()
        clock.advance(timedelta(seconds=61))
        await asyncio.wait_for(long, timeout=1)
        assert clock.now() == EPOCH + timedelta(seconds=121)

    asyncio.run(scenario())


def test_a_manual_sleep_of_no_time_returns_without_advancing() -> None:
    async def scenario() -> None:
        clock = ManualClock(EPOCH)
        await asyncio.wait_for(clock.sleep(0), timeout=1)
        await asyncio.wait_for(clock.sleep(-30), timeout=1)
        assert clock.now() == EPOCH

    asyncio.run(scenario())


def test_the_spec_builds_the_clock_it_names() -> None:
    assert isinstance(clock_from_spec("real"), RealClock)
    assert isinstance(clock_from_spec("  real\n"), RealClock)
    fast = clock_from_spec("accelerated:60")
    assert isinstance(fast, AcceleratedClock) and fast.factor == 60.0
    assert isinstance(clock_from_spec("accelerated:0.5"), AcceleratedClock)
    manual = clock_from_spec("manual")
    assert isinstance(manual, ManualClock)
    assert manual.now() == datetime(2009, 10, 1, 12, 0, tzinfo=UTC)
    assert clock_from_spec("manual:").now() == datetime(2009, 10, 1, 12, 0, tzinfo=UTC)


def test_a_manual_spec_without_a_zone_starts_in_utc() -> None:
    clock = clock_from_spec("manual:2010-01-02T03:04:05")
    assert clock.now() == datetime(2010, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "fast",
        "REAL",
        "real:2",
        "wall:1",
        "accelerated",
        "accelerated:",
        "accelerated:x",
        "accelerated:0",
        "accelerated:-2",
    ],
)
def test_a_bad_clock_spec_is_refused_with_the_spec_quoted(spec: str) -> None:
    with pytest.raises(ValueError, match="bad clock spec"):
        clock_from_spec(spec)


def test_a_manual_spec_with_a_start_that_is_not_a_date_is_refused() -> None:
    with pytest.raises(ValueError, match="yesterday"):
        clock_from_spec("manual:yesterday")


@pytest.mark.parametrize("spec", ["accelerated:nan", "accelerated:inf"])
def test_an_acceleration_factor_that_is_not_a_finite_number_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="bad clock spec"):
        clock_from_spec(spec)


def test_a_manual_spec_with_a_zone_still_tells_utc() -> None:
    clock = clock_from_spec("manual:2009-10-01T14:00:00+02:00")
    assert clock.now() == datetime(2009, 10, 1, 12, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_accelerated_clocks_aligned_to_one_anchor_tell_the_same_agency_time() -> None:
    wall_epoch = datetime.now(UTC) - timedelta(seconds=2)
    early = AcceleratedClock(3600.0)
    time.sleep(0.05)
    late = AcceleratedClock(3600.0, epoch=EPOCH)
    for clock in (early, late):
        clock.align(agency_epoch=EPOCH, wall_epoch=wall_epoch)
    # The wall time since the anchor at 3600x, whenever each clock was made: read between two
    # wall readings, so a stalled machine widens the window instead of failing the test.
    before = datetime.now(UTC)
    told = [early.now(), late.now()]
    after = datetime.now(UTC)
    slack = timedelta(seconds=1)
    for now in told:
        assert EPOCH + (before - wall_epoch) * 3600 - slack <= now
        assert now <= EPOCH + (after - wall_epoch) * 3600 + slack


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P2D", timedelta(days=2)),
        ("PT48H", timedelta(hours=48)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
        ("P1W", timedelta(weeks=1)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("p30d", timedelta(days=30)),
        ("48h", timedelta(hours=48)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90s", timedelta(seconds=90)),
        (" 1.5h ", timedelta(hours=1.5)),
    ],
)
def test_a_duration_reads_as_iso_8601_or_the_short_form(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("P1Y", "years and months"),
        ("P1M", "years and months"),
        ("P", "bad duration"),
        ("PT", "bad duration"),
        ("P1DT", "bad duration"),
        ("-5h", "bad duration"),
        ("5 hours", "bad duration"),
        ("", "bad duration"),
        ("3651d", "longer than the most allowed"),
        ("9" * 40 + "d", "longer than the most allowed"),
    ],
)
def test_a_bad_or_over_long_duration_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds", [-1.0, float("nan"), float("inf"), MAX_STEP.total_seconds() + 1]
)
def test_a_step_must_be_finite_forward_and_at_most_the_maximum(seconds: float) -> None:
    with pytest.raises(ValueError):
        step_of(seconds)
    assert step_of(MAX_STEP.total_seconds()) == MAX_STEP


def test_repacing_an_accelerated_clock_goes_on_from_its_current_time() -> None:
    clock = AcceleratedClock(1.0, epoch=EPOCH)
    changed_at = clock.set_factor(3600.0)
    assert EPOCH <= changed_at < EPOCH + timedelta(seconds=5)
    time.sleep(0.05)
    # 0.05 s of wall time at 3600x is three agency minutes, give or take the machine.
    assert changed_at + timedelta(minutes=2) <= clock.now() < changed_at + timedelta(minutes=30)
    with pytest.raises(ValueError, match="positive and finite"):
        clock.set_factor(0)
    assert clock.factor == 3600.0


@pytest.mark.parametrize("text", ["7" * 70_000, "P" + "7" * 70_000, "1" * 65 + "s"])
def test_a_long_duration_is_refused_at_once_by_its_length(text: str) -> None:
    # A long run of digits made the duration patterns search for minutes (a service's loop
    # blocked on AdminService.AdvanceClock).
    started = time.monotonic()
    with pytest.raises(ValueError, match="at most 64 characters"):
        parse_duration(text)
    assert time.monotonic() - started < 5, "searched instead of refusing by length"
