"""What the console reads from the five HTTP edges, and the little it remembers between reads.

Every read has a short timeout and turns an edge that does not answer, answers an error or
answers something that is not what its route promises into a `problem` string, so a page shows
"unreachable" for one service rather than failing as a whole. The console holds no database:
message rates are the difference between two reads of `/metrics`, the recent bookings follow
the SIB's journal (`/v1/journal?after=`), and the measures' history is the samples taken while
the page was open.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..federation import Agency

# A TCN as the federation writes them: an agency prefix and hex digits; the journal route
# takes at most 64 characters.
TCN_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The recent bookings the console keeps (the newest), and the journal page it reads at once.
RECENT_BOOKINGS: Final = 100
JOURNAL_PAGE: Final = 5000
# Measures samples kept for the charts "over time" (one per refresh of the measures page).
HISTORY: Final = 300


class EdgeError(Exception):
    """An edge did not answer, or answered something other than its route promises."""


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the services' HTTP edges are and what the console sends to their operator
    routes."""

    urls: Mapping[str, str]
    # The operator's token header (TLS on), sent only to POST /v1/outbox/dead/requeue.
    operator_headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 3.0
    # How often the pages refresh their live parts, in milliseconds.
    refresh_ms: int = 1500


def valid_tcn(tcn: str) -> bool:
    """True for a string shaped like a TCN."""
    return TCN_PATTERN.fullmatch(tcn) is not None


@dataclass
class ServiceStatus:
    """One service as the overview shows it."""

    name: str
    url: str
    ready: bool = False
    # False when the edge did not answer at all (down, or not there).
    reachable: bool = True
    reason: str = ""
    received_per_s: float | None = None
    sent_per_s: float | None = None
    received_total: float | None = None
    sent_total: float | None = None
    outbox: dict[str, int] = field(default_factory=dict)

    @property
    def depth(self) -> int | None:
        """Messages waiting to be delivered (pending and in flight)."""
        if not self.outbox:
            return None
        return self.outbox.get("pending", 0) + self.outbox.get("inflight", 0)

    @property
    def dead(self) -> int | None:
        """Dead letters in its outbox."""
        return self.outbox.get("dead") if self.outbox else None


@dataclass
class BookingRow:
    """A booking the SIB took, with the kinds of response it has received so far."""

    tcn: str
    at: str
    ori: str
    responses: list[str] = field(default_factory=list)


@dataclass
class MeasuresSample:
    """The figures the measures page draws over time, read at one refresh."""

    taken_at: datetime
    detainers: dict[str, float]
    ice: dict[str, float]


def message_totals(exposition: str) -> tuple[float, float]:
    """Messages received (processed) and delivered, counted since the service started, from
    its Prometheus text."""
    received = sent = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            outcome = sample.labels.get("outcome")
            if sample.name == "scfed_messages_received_total" and outcome == "processed":
                received += sample.value
            elif sample.name == "scfed_messages_sent_total" and outcome == "delivered":
                sent += sample.value
    return received, sent


class Edges:
    """The console's reads and the one write (requeue) on the services' HTTP edges."""

    def __init__(self, config: ConsoleConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        # (monotonic time, received, sent) of the last /metrics read of each service.
        self._last_totals: dict[str, tuple[float, float, float]] = {}
        self._journal_after = 0
        self._bookings: dict[str, BookingRow] = {}
        self.history: deque[MeasuresSample] = deque(maxlen=HISTORY)

    @property
    def names(self) -> list[str]:
        """The services the console knows an edge of, in the registry's order."""
        return [a.value for a in Agency if a in self.config.urls]

    def url(self, name: str) -> str:
        """A service's edge, without a trailing slash."""
        return self.config.urls[name].rstrip("/")

    async def get(self, name: str, path: str, **params: Any) -> Any:
        """A JSON answer of one route; EdgeError for anything else."""
        try:
            r = await self.client.get(f"{self.url(name)}{path}", params=params or None)
        except httpx.HTTPError as exc:
            raise EdgeError(f"{name} at {self.url(name)} did not answer: {exc!r}") from exc
        if r.status_code != 200:
            raise EdgeError(f"{name} answered {path} with HTTP {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError as exc:
            raise EdgeError(f"{name} answered {path} with something not JSON") from exc

    async def status(self, name: str) -> ServiceStatus:
        """Readiness, message rates and outbox of one service."""
        status = ServiceStatus(name=name, url=self.url(name))
        try:
            r = await self.client.get(f"{status.url}/readyz")
            status.ready = r.status_code == 200
            body = (
                r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            )
            status.reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
            if not status.ready and not status.reason:
                status.reason = f"/readyz answered HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            status.reachable = False
            status.reason = f"no answer at /readyz ({type(exc).__name__})"
            return status
        try:
            metrics = await self.client.get(f"{status.url}/metrics")
            if metrics.status_code == 200:
                self._rates(status, *message_totals(metrics.text))
        except (httpx.HTTPError, ValueError):
            pass
        try:
            status.outbox = {
                str(k): int(v) for k, v in (await self.get(name, "/v1/outbox")).items()
            }
        except (EdgeError, AttributeError, TypeError, ValueError):
            status.outbox = {}
        return status

    def _rates(self, status: ServiceStatus, received: float, sent: float) -> None:
        now = time.monotonic()
        status.received_total, status.sent_total = received, sent
        last = self._last_totals.get(status.name)
        self._last_totals[status.name] = (now, received, sent)
        if last is None or now - last[0] <= 0:
            return
        elapsed = now - last[0]
        # A restarted service counts from 0 again: no negative rate.
        status.received_per_s = max(0.0, (received - last[1]) / elapsed)
        status.sent_per_s = max(0.0, (sent - last[2]) / elapsed)

    async def overview(self) -> list[ServiceStatus]:
        """Every service's status, read at once."""
        return list(await asyncio.gather(*(self.status(n) for n in self.names)))

    async def recent_bookings(self) -> tuple[list[BookingRow], str]:
        """The newest bookings the SIB took (newest first) and a problem, if its journal could
        not be read. Reads only the journal entries after those already seen."""
        if Agency.SIB not in self.config.urls:
            return [], "no SIB edge configured"
        problem = ""
        try:
            while True:
                page = await self.get(
                    Agency.SIB, "/v1/journal", after=self._journal_after, limit=JOURNAL_PAGE
                )
                for entry in page:
                    self._journal_after = max(self._journal_after, int(entry["id"]))
                    self._note(entry)
                if len(page) < JOURNAL_PAGE:
                    break
        except (EdgeError, KeyError, TypeError, ValueError) as exc:
            problem = str(exc)
        rows = sorted(self._bookings.values(), key=lambda b: b.at, reverse=True)
        return rows, problem

    def _note(self, entry: Mapping[str, Any]) -> None:
        tcn = str(entry.get("tcn", ""))
        if entry.get("direction") == "received" and entry.get("tot") == "BOOKING":
            ori = str(entry["peer"]).removeprefix("lea:")
            self._bookings[tcn] = BookingRow(tcn=tcn, at=str(entry["at"]), ori=ori)
            if len(self._bookings) > RECENT_BOOKINGS:
                oldest = min(self._bookings.values(), key=lambda b: b.at)
                del self._bookings[oldest.tcn]
        elif (
            entry.get("direction") == "received"
            and entry.get("outcome") == "processed"
            and tcn in self._bookings
        ):
            self._bookings[tcn].responses.append(str(entry["tot"]))

    async def journal(self, tcn: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Every service's journal entries of one TCN, and the services left out and why."""

        async def one(name: str) -> tuple[str, list[dict[str, Any]] | str]:
            try:
                entries = await self.get(name, f"/v1/journal/{tcn}")
            except EdgeError as exc:
                return name, str(exc)
            return name, list(entries) if isinstance(entries, list) else "not a journal"

        entries: list[dict[str, Any]] = []
        left_out: dict[str, str] = {}
        for name, got in await asyncio.gather(*(one(n) for n in self.names)):
            if isinstance(got, str):
                left_out[name] = got
            else:
                entries.extend(got)
        return entries, left_out

    async def dead_letters(self) -> dict[str, list[dict[str, Any]] | str]:
        """Each service's dead letters, or why they could not be read."""

        async def one(name: str) -> tuple[str, list[dict[str, Any]] | str]:
            try:
                rows = await self.get(name, "/v1/outbox/dead", limit=1000)
            except EdgeError as exc:
                return name, str(exc)
            return name, list(rows) if isinstance(rows, list) else "not a list of dead letters"

        return dict(await asyncio.gather(*(one(n) for n in self.names)))

    async def requeue(self, name: str) -> tuple[bool, str]:
        """Puts a service's dead letters back in its queue, as the operator; whether it did,
        and what the service said."""
        url = f"{self.url(name)}/v1/outbox/dead/requeue"
        try:
            r = await self.client.post(url, headers=dict(self.config.operator_headers))
        except httpx.HTTPError as exc:
            return False, f"{name} at {self.url(name)} did not answer: {exc!r}"
        if r.status_code == 200:
            try:
                count = int(r.json()["requeued"])
            except (ValueError, KeyError, TypeError):
                return False, f"{name} answered something unexpected: {r.text[:200]}"
            return True, f"{name}: {count} dead letter(s) requeued"
        detail = r.text[:300]
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(r.json().get("detail", detail))
        return False, f"{name} refused the requeue (HTTP {r.status_code}): {detail}"

    async def measures(
        self,
    ) -> tuple[list[dict[str, Any]], dict[str, str], MeasuresSample, dict[str, dict[str, float]]]:
        """The Strategic Plan's measures as `scfed report` computes them, the services whose
        counts could not be read, a new sample for the charts over time, and the counts (for
        Goal 3.3's programs and the rollout phases)."""
        from ..cli.report import SOURCES, compute

        counts: dict[str, dict[str, float]] = {}
        unreadable: dict[str, str] = {}
        for name in SOURCES:
            if name not in self.config.urls:
                unreadable[name] = "no HTTP edge given"
                continue
            try:
                got = await self.get(name, "/v1/measures")
                counts[name] = {str(k): float(v) for k, v in got.items()}
            except (EdgeError, AttributeError, TypeError, ValueError) as exc:
                unreadable[name] = str(exc)
        detainers: dict[str, float] = {}
        if Agency.SIB in self.config.urls:
            try:
                summary = await self.get(Agency.SIB, "/v1/bookings-summary")
                detainers = {str(k): float(v) for k, v in summary["detainers"].items()}
            except (EdgeError, KeyError, TypeError, ValueError, AttributeError):
                detainers = {}
        sample = MeasuresSample(
            taken_at=datetime.now(UTC), detainers=detainers, ice=counts.get(Agency.ICE_FIELD, {})
        )
        self.history.append(sample)
        return compute(counts, unreadable), unreadable, sample, counts

    async def referrals(self) -> list[dict[str, Any]] | str:
        """The field offices' referrals for prosecution (Strategic Plan goal 2), oldest first,
        or why they could not be read."""
        if Agency.ICE_FIELD not in self.config.urls:
            return "no ICE field edge configured"
        try:
            got = await self.get(Agency.ICE_FIELD, "/v1/referrals")
        except EdgeError as exc:
            return str(exc)
        if not isinstance(got, list) or not all(isinstance(r, dict) for r in got):
            return "not a list of referrals"
        return got

    async def cases(self) -> dict[str, Any] | str:
        """The field offices' removal cases by state, or why they could not be read."""
        if Agency.ICE_FIELD not in self.config.urls:
            return "no ICE field edge configured"
        try:
            got = await self.get(Agency.ICE_FIELD, "/v1/cases-summary")
        except EdgeError as exc:
            return str(exc)
        return dict(got) if isinstance(got, dict) else "not a cases summary"
