"""Readiness from one source: a periodic probe of the database and the delivery worker.

The probe sets gRPC health (what Kubernetes' probes ask) and the answer of HTTP `/readyz`, so
the two never disagree. A database outage is logged once when it starts, in one summary line
every `outage_summary_s` while it lasts (with the requests refused meanwhile), and once when it
ends; the edges answer 503 / UNAVAILABLE and count a refusal here instead of logging a traceback
per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from grpc_health.v1 import health, health_pb2

from .db import Database
from .periodic import PeriodicTask

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Whether the service can serve, and why not; kept by a periodic probe."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        worker_running: Callable[[], bool],
        health_servicer: health.aio.HealthServicer,
        probe_s: float,
        summary_s: float,
    ) -> None:
        self._service = service
        self._db = db
        self._worker_running = worker_running
        self._health = health_servicer
        self._summary_s = summary_s
        self._names: list[str] = [""]
        self._published: bool | None = None
        self._probe = PeriodicTask(f"{service}-readiness", self._probe_round, poll_s=probe_s)
        self.ok = False
        self.reason = "starting"
        # The database outage under way: when it began, why, refusals since, last summary.
        self._outage_since: float | None = None
        self._outage_cause = ""
        self._refused = 0
        self._summary_at = 0.0

    def not_ready(self, reason: str) -> None:
        """Marks the service not ready (starting, stopping) until the next probe says more."""
        self.ok = False
        self.reason = reason

    async def start(self, names: Sequence[str]) -> None:
        """Probes once (so health is right from the first call), then keeps probing."""
        self._names = ["", *names]
        await self.probe()
        self._probe.start()

    async def stop(self) -> None:
        """Stops probing; the service is not ready any more."""
        await self._probe.stop()
        self.not_ready("starting or stopping")

    def refused(self) -> None:
        """An edge answered 503 / UNAVAILABLE because the database did not answer."""
        self._refused += 1
        if self._outage_since is None:
            self._probe.notify()  # find out now, not at the next tick

    async def probe(self) -> None:
        """Checks the worker and the database; updates health, /readyz and the outage log."""
        cause = await self._db.check()
        if cause is None:
            self._outage_ended()
        else:
            self._outage_goes_on(cause)
        if not self._worker_running():
            self.ok, self.reason = False, "delivery worker is not running"
        elif cause is not None:
            self.ok, self.reason = False, f"database does not answer: {cause}"
        else:
            self.ok, self.reason = True, "ready"
        if self.ok != self._published:
            status = SERVING if self.ok else NOT_SERVING
            for name in self._names:
                await self._health.set(name, status)
            self._published = self.ok

    async def _probe_round(self) -> None:
        await self.probe()

    def _outage_goes_on(self, cause: str) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since, self._outage_cause, self._summary_at = now, cause, now
            self._refused = 0
            log.warning(
                "%s: database %s does not answer (%s); not ready, answering 503 / UNAVAILABLE "
                "until it does",
                self._service,
                self._db.target,
                cause,
            )
        elif now - self._summary_at >= self._summary_s:
            self._summary_at = now
            log.warning(
                "%s: database %s still does not answer after %.1fs (%s); %d request(s) refused",
                self._service,
                self._db.target,
                now - self._outage_since,
                cause,
                self._refused,
            )

    def _outage_ended(self) -> None:
        if self._outage_since is None:
            return
        log.warning(
            "%s: database %s answers again after %.1fs; %d request(s) refused during the outage",
            self._service,
            self._db.target,
            time.monotonic() - self._outage_since,
            self._refused,
        )
        self._outage_since = None
        self._refused = 0
