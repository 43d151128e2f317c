"""The runtime's background loop: rounds, pauses, failures and a prompt stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from services.runtime.periodic import AT_ONCE, PeriodicTask

# Long enough that a test passing within its guard proves the loop did not wait for it.
LONG_POLL_S = 60.0
GUARD_S = 5.0


@contextlib.asynccontextmanager
async def running(task: PeriodicTask) -> AsyncIterator[PeriodicTask]:
    """The task started for the block and stopped after it."""
    task.start()
    try:
        yield task
    finally:
        await task.stop()


async def _let_the_loop_run() -> None:
    """Yields to the event loop often enough for a loop that does not pause to go round again."""
    for _ in range(20):
        await asyncio.sleep(0)


class Rounds:
    """A round that counts its calls and answers from a script (then None, the poll interval)."""

    def __init__(self, *answers: float | BaseException | None) -> None:
        self.answers = list(answers)
        self.calls = 0
        self._changed = asyncio.Condition()

    async def __call__(self) -> float | None:
        self.calls += 1
        async with self._changed:
            self._changed.notify_all()
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def reach(self, calls: int) -> None:
        """Waits until the loop has started `calls` rounds (guarded, never a time assertion)."""

        async def counted() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.calls >= calls)

        await asyncio.wait_for(counted(), timeout=GUARD_S)


async def test_a_round_with_more_work_waiting_is_followed_at_once() -> None:
    rounds = Rounds(AT_ONCE, AT_ONCE, AT_ONCE)
    async with running(PeriodicTask("test", rounds, poll_s=LONG_POLL_S)):
        await rounds.reach(4)


async def test_rounds_repeat_after_the_poll_interval() -> None:
    rounds = Rounds()
    async with running(PeriodicTask("test", rounds, poll_s=0.01)):
        await rounds.reach(3)


async def test_a_round_may_ask_for_its_own_pause() -> None:
    rounds = Rounds(0.01, 0.01)
    async with running(PeriodicTask("test", rounds, poll_s=LONG_POLL_S)):
        await rounds.reach(3)


async def test_notify_ends_a_pause_early() -> None:
    rounds = Rounds()
    async with running(PeriodicTask("test", rounds, poll_s=LONG_POLL_S)) as task:
        await rounds.reach(1)
        task.notify()
        await rounds.reach(2)


async def test_a_failed_round_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = Rounds(RuntimeError("the database went away"))
    with caplog.at_level(logging.ERROR, logger="services.runtime.periodic"):
        async with running(PeriodicTask("test-loop", rounds, poll_s=0.01)) as task:
            await rounds.reach(3)
            assert task.running
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "test-loop" in failure.getMessage()
    assert failure.exc_info is not None and "the database went away" in str(failure.exc_info[1])


async def test_a_failed_round_waits_for_the_poll_interval_before_the_next() -> None:
    rounds = Rounds(RuntimeError("boom"))
    async with running(PeriodicTask("test", rounds, poll_s=LONG_POLL_S)):
        await rounds.reach(1)
        await _let_the_loop_run()
        assert rounds.calls == 1


async def test_a_cancellation_from_inside_a_round_does_not_end_the_loop() -> None:
    rounds = Rounds(asyncio.CancelledError())
    async with running(PeriodicTask("test", rounds, poll_s=0.01)) as task:
        await rounds.reach(3)
        assert task.running


async def test_stop_ends_the_loop_during_a_long_pause() -> None:
    rounds = Rounds()
    task = PeriodicTask("test", rounds, poll_s=LONG_POLL_S)
    task.start()
    await rounds.reach(1)
    assert task.running
    await asyncio.wait_for(task.stop(), timeout=GUARD_S)
    assert not task.running
    assert rounds.calls == 1


async def test_stop_cancels_a_round_in_progress() -> None:
    started = asyncio.Event()
    ended: list[str] = []

    async def endless() -> float | None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cancelled")
        return None

    task = PeriodicTask("test", endless, poll_s=LONG_POLL_S)
    task.start()
    await asyncio.wait_for(started.wait(), timeout=GUARD_S)
    await asyncio.wait_for(task.stop(), timeout=GUARD_S)
    assert ended == ["cancelled"]
    assert not task.running


async def test_starting_twice_runs_one_loop_and_it_can_start_again_after_a_stop() -> None:
    rounds = Rounds()
    task = PeriodicTask("test", rounds, poll_s=LONG_POLL_S)
    task.start()
    task.start()
    await rounds.reach(1)
    await _let_the_loop_run()
    assert rounds.calls == 1
    await task.stop()
    task.start()
    try:
        await rounds.reach(2)
    finally:
        await task.stop()
