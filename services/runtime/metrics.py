"""Prometheus metrics of one service host, in a registry of its own (`GET /metrics`).

Every host keeps its own `CollectorRegistry`, never prometheus_client's global one: the tests
run the five services in one process, where one registry would mix their series (or refuse the
second service's as duplicates). The series come three ways:

- counted in the process as things happen: messages received and sent (delivery.py calls
  `DeliveryMetrics` once a transaction has committed), delivery latency, and the services' own
  histograms (search latency). Since this process started, as Prometheus counters are: with
  several replicas, each counts its own share;
- read from memory at scrape time: readiness, gallery sizes (`Gauge.set_function`);
- read from the database at scrape time: the outbox by status, the age of the oldest message
  not yet delivered, and the services' own counts (LESC's queue, the field offices' beds). A
  scrape reads them in one transaction, within `DB_CONNECT_TIMEOUT_S`. When the database does
  not answer (or is not connected yet) these series are left out and
  `scfed_metrics_database_up` is 0: a scrape during an outage still gets the counters, where a
  503 would lose them too.

Labels stay few: a message type the federation does not know is counted as `tot="other"` (a
peer may put any string in an envelope, and each label value is a series of its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database, is_unavailable
from .envelope import MessageType
from .models import OutboxMessage, OutboxStatus, Outcome

log = logging.getLogger(__name__)

# Delivery takes milliseconds when the peer answers, up to minutes of retries when it does not.
DELIVERY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# A 1:N tenprint search takes about a millisecond on a small gallery.
SEARCH_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

OTHER_TOT: Final = "other"
_KNOWN_TOTS: Final = frozenset(str(tot) for tot in MessageType)
# The statuses of a message not yet delivered: the age of the oldest is the backlog's.
_UNDELIVERED: Final = (OutboxStatus.PENDING, OutboxStatus.INFLIGHT)

# What a service reads from its database for a scrape: metric families, in the scrape's session.
ScrapeRead = Callable[[AsyncSession], Awaitable[Iterable[Metric]]]


def tot_label(tot: str) -> str:
    """The `tot` label of a message type: one of the federation's TOTs, or "other"."""
    return tot if tot in _KNOWN_TOTS else OTHER_TOT


class SentOutcome(StrEnum):
    """What one settled delivery attempt came to."""

    DELIVERED = "delivered"
    # The attempt failed; the message waits for another (pending again, after a backoff).
    RETRY = "retry"
    # Given up on: a permanent refusal or the last attempt (the dead-letter state).
    DEAD = "dead"


class DeliveryMetrics:
    """The outbox's and inbox's counters and the delivery latency, in one host's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self._received = Counter(
            "scfed_messages_received_total",
            "Messages this process received from peers, by type and what the inbox did with "
            "them (processed, duplicate, refused)",
            ["tot", "outcome"],
            registry=registry,
        )
        self._sent = Counter(
            "scfed_messages_sent_total",
            "Delivery attempts this process settled, by type and outcome (delivered; retry: "
            "failed and pending again; dead: given up on)",
            ["tot", "outcome"],
            registry=registry,
        )
        self._delivery = Histogram(
            "scfed_delivery_seconds",
            "From a message's write to the outbox to its delivery (retries included), by type",
            ["tot"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )

    def received(self, tot: str, outcome: Outcome) -> None:
        """Counts one message the inbox journaled, once its transaction committed."""
        self._received.labels(tot=tot_label(tot), outcome=str(outcome)).inc()

    def sent(self, tot: str, outcome: SentOutcome, *, created_at: datetime | None = None) -> None:
        """Counts one settled attempt; a delivery also observes its latency from `created_at`."""
        label = tot_label(tot)
        self._sent.labels(tot=label, outcome=str(outcome)).inc()
        if outcome == SentOutcome.DELIVERED and created_at is not None:
            seconds = (datetime.now(UTC) - created_at).total_seconds()
            self._delivery.labels(tot=label).observe(max(0.0, seconds))


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A gauge family of one unlabelled value, for a `ScrapeRead`."""
    return GaugeMetricFamily(name, documentation, value=value)


def labelled_gauge(
    name: str,
    documentation: str,
    labels: Sequence[str],
    values: Mapping[tuple[str, ...], float],
) -> GaugeMetricFamily:
    """A gauge family with one sample per label-value tuple, for a `ScrapeRead`."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


async def outbox_families(session: AsyncSession) -> list[Metric]:
    """The outbox by status, and how long its oldest undelivered message has waited."""
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    counts: dict[tuple[str, ...], float] = {(str(status),): 0.0 for status in OutboxStatus}
    counts.update({(str(status),): float(n) for status, n in rows})
    oldest = await session.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(_UNDELIVERED))
    )
    age = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return [
        labelled_gauge(
            "scfed_outbox_messages",
            "Outbox messages by status (pending, inflight, delivered, dead: the dead letters), "
            "every replica's together",
            ["status"],
            counts,
        ),
        gauge(
            "scfed_outbox_oldest_pending_age_seconds",
            "How long the oldest message not yet delivered (pending or inflight) has waited "
            "since it was written; 0 when none waits",
            age,
        ),
    ]


class _Scraped(Collector):
    """The families a scrape read from the database, handed to the registry for that scrape."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        """The families of the scrape under way."""
        return list(self.families)

    def describe(self) -> Iterable[Metric]:
        """Nothing to check for duplicates ahead: the names come with each scrape."""
        return []


class ServiceMetrics:
    """One host's registry: the delivery counters, the services' own metrics, and the series
    read from the database at each scrape."""

    def __init__(self, db: Database, *, ready: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry()
        self.delivery = DeliveryMetrics(self.registry)
        self._db = db
        self._reads: list[ScrapeRead] = [outbox_families]
        self._scraped = _Scraped()
        self.registry.register(self._scraped)
        Gauge(
            "scfed_ready",
            "1 while the service is ready (its readiness probe's last answer, as /readyz)",
            registry=self.registry,
        ).set_function(lambda: float(ready()))

    def read_at_scrape(self, read: ScrapeRead) -> None:
        """Adds families read from the database at each scrape, in the scrape's transaction."""
        self._reads.append(read)

    async def exposition(self) -> bytes:
        """Every series in Prometheus' text format, the database's read once for this scrape."""
        families = await self._read_database()
        self._scraped.families = families
        try:
            return generate_latest(self.registry)
        finally:
            self._scraped.families = []

    async def _read_database(self) -> list[Metric]:
        """The database's families and `scfed_metrics_database_up`; without the families when
        the database does not answer in time (or a read fails: logged, not a 500)."""
        families: list[Metric] = []
        try:
            async with asyncio.timeout(self._db.connect_timeout_s), self._db.session() as session:
                for read in self._reads:
                    families.extend(await read(session))
            answered = True
        except Exception as error:
            if not is_unavailable(error):
                log.exception("reading metrics from the database failed")
            families, answered = [], False
        up = gauge(
            "scfed_metrics_database_up",
            "1 when this scrape read the database; 0 when it did not answer in time (the "
            "series read from it are left out)",
            1.0 if answered else 0.0,
        )
        return [*families, up]
