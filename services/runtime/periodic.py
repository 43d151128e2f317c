"""Background loops: a round of work, a pause, and again, until the loop is stopped.

A round returns how long to pause before the next one: `AT_ONCE` when more work is waiting,
None for the poll interval, or any number of seconds. A round that raises is logged and the
loop pauses for the poll interval and goes on, so one bad round never ends the loop (a round
that fails because the database does not answer is not logged: the readiness probe reports the
outage once, see `readiness.py`). A
cancellation that does not come from `stop()` (a call cancelled under the round, say) is
treated the same way; the loop ends only when it is stopped. `notify()` ends a pause early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from .db import is_unavailable

log = logging.getLogger(__name__)

# A round's answer when more work is waiting: the next round starts without a pause.
AT_ONCE = 0.0

Round = Callable[[], Awaitable[float | None]]


class PeriodicTask:
    """One background loop of rounds, started and stopped with the service."""

    def __init__(self, name: str, work: Round, *, poll_s: float) -> None:
        self.name = name
        self._work = work
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the loop; a loop already running is left alone."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    @property
    def running(self) -> bool:
        """True while the loop is alive."""
        return self._task is not None and not self._task.done()

    def notify(self) -> None:
        """Ends the current pause: there is work for the next round."""
        self._wake.set()

    async def stop(self) -> None:
        """Cancels the loop and waits until it has ended."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            # Cleared before the round, so a notify() during the round is not lost.
            self._wake.clear()
            pause = await self._round()
            if pause is None:
                pause = self._poll_s
            if pause <= AT_ONCE:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    async def _round(self) -> float | None:
        """One round; a failure is logged and answers None (pause for the poll interval)."""
        try:
            return await self._work()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.warning("%s: a round was cancelled; going on", self.name)
        except Exception as error:
            if is_unavailable(error):
                log.debug("%s: a round failed, the database does not answer", self.name)
            else:
                log.exception("%s: a round failed; trying again", self.name)
        return None
