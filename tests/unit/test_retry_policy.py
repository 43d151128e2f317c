"""Outbox retries: exponential, capped, jittered backoff, and which refusals are final."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator

import grpc
import pytest

from services.runtime.delivery import PERMANENT_CODES, RetryPolicy


@pytest.fixture(autouse=True)
def restore_random_state() -> Iterator[None]:
    """Tests seed the global generator for repeatable draws; others get it back untouched."""
    state = random.getstate()
    yield
    random.setstate(state)


def _jitter_bounds(
    monkeypatch: pytest.MonkeyPatch, policy: RetryPolicy, attempt: int
) -> tuple[float, float]:
    """The (low, high) interval `delay_after` draws its jittered delay from."""
    seen: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    with monkeypatch.context() as patch:
        patch.setattr(random, "uniform", record)
        policy.delay_after(attempt)
    (bounds,) = seen
    return bounds


def test_the_default_policy_retries_for_a_while_with_short_waits() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 60
    assert (policy.base_delay_s, policy.max_delay_s, policy.deadline_s) == (0.1, 5.0, 10.0)


def test_the_ceiling_doubles_with_each_attempt_until_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=5.0)
    ceilings = [_jitter_bounds(monkeypatch, policy, n)[1] for n in range(8)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_the_floor_is_half_the_base_delay_on_every_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = RetryPolicy(base_delay_s=0.4, max_delay_s=30.0)
    floors = {_jitter_bounds(monkeypatch, policy, n)[0] for n in (0, 1, 5, 30, 1000)}
    assert floors == {0.2}


@pytest.mark.parametrize("attempt", [30, 31, 64, 1_000, 10**9])
def test_a_very_late_attempt_waits_the_cap_without_overflowing(
    monkeypatch: pytest.MonkeyPatch, attempt: int
) -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=5.0)
    assert _jitter_bounds(monkeypatch, policy, attempt) == (0.05, 5.0)
    assert 0.05 <= policy.delay_after(attempt) <= 5.0


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(),
        RetryPolicy(base_delay_s=0.01, max_delay_s=0.5),
        RetryPolicy(base_delay_s=1.0, max_delay_s=60.0),
        RetryPolicy(base_delay_s=2.0, max_delay_s=2.0),
    ],
)
def test_every_delay_lies_between_half_the_base_and_the_capped_ceiling(
    policy: RetryPolicy,
) -> None:
    random.seed(2009)
    for attempt in range(0, 50):
        ceiling = min(policy.max_delay_s, policy.base_delay_s * 2**attempt)
        for _ in range(20):
            delay = policy.delay_after(attempt)
            assert policy.base_delay_s / 2 <= delay <= ceiling
            assert delay <= policy.max_delay_s


def test_a_delay_is_never_negative_whatever_the_attempt_number() -> None:
    policy = RetryPolicy()
    random.seed(7)
    assert all(policy.delay_after(n) >= 0 for n in range(-40, 100) for _ in range(5))


def test_delays_are_jittered_so_that_retries_spread_out() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=5.0)
    random.seed(11)
    delays = [policy.delay_after(20) for _ in range(500)]
    assert len(set(delays)) == 500
    assert min(delays) < 1.0 and max(delays) > 4.5
    assert statistics.mean(delays) == pytest.approx((0.05 + 5.0) / 2, abs=0.3)


def test_the_cap_holds_even_when_it_is_below_half_the_base_delay() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=0.2)
    random.seed(3)
    assert max(policy.delay_after(n) for n in range(10) for _ in range(50)) <= 0.2


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAUTHENTICATED,
    ],
)
def test_a_refusal_another_attempt_cannot_cure_is_permanent(code: grpc.StatusCode) -> None:
    assert code in PERMANENT_CODES


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    ],
)
def test_an_outage_or_timeout_is_retried_not_dead_lettered(code: grpc.StatusCode) -> None:
    assert code not in PERMANENT_CODES


def test_success_is_not_a_refusal() -> None:
    assert grpc.StatusCode.OK not in PERMANENT_CODES
