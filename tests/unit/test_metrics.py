"""The pure parts of the metrics (runtime/metrics.py): labels kept few, counts and latency
where they belong, registries apart, and a scrape whose database reads fail still answered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import Database
from services.runtime.metrics import (
    OTHER_TOT,
    DeliveryMetrics,
    SentOutcome,
    ServiceMetrics,
    labelled_gauge,
    tot_label,
)
from services.runtime.models import Outcome, RuntimeBase


def _values(text: bytes | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_a_tot_the_federation_does_not_know_is_labelled_other() -> None:
    assert tot_label("CAR") == "CAR"
    assert tot_label("I-247") == "I-247"
    assert tot_label("NOT-A-TOT") == tot_label("") == OTHER_TOT


def test_delivery_metrics_count_by_tot_and_outcome_and_time_deliveries_only() -> None:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    written = datetime.now(UTC) - timedelta(seconds=2)
    metrics.received("CAR", Outcome.PROCESSED)
    metrics.received("CAR", Outcome.DUPLICATE)
    metrics.received("FORGED", Outcome.REFUSED)
    metrics.sent("SRE", SentOutcome.RETRY, created_at=written)
    metrics.sent("SRE", SentOutcome.DELIVERED, created_at=written)
    metrics.sent("SRE", SentOutcome.DEAD, created_at=written)
    values = _values(generate_latest(registry))

    received = "scfed_messages_received_total"
    assert values[_key(received, tot="CAR", outcome="processed")] == 1
    assert values[_key(received, tot="CAR", outcome="duplicate")] == 1
    assert values[_key(received, tot="other", outcome="refused")] == 1
    for outcome in ("retry", "delivered", "dead"):
        assert values[_key("scfed_messages_sent_total", tot="SRE", outcome=outcome)] == 1
    # Only the delivery is a latency: about the two seconds since it was written.
    assert values[_key("scfed_delivery_seconds_count", tot="SRE")] == 1
    assert 2 <= values[_key("scfed_delivery_seconds_sum", tot="SRE")] < 10
    assert values[_key("scfed_delivery_seconds_bucket", tot="SRE", le="1.0")] == 0
    assert values[_key("scfed_delivery_seconds_bucket", tot="SRE", le="2.5")] == 1


def test_two_hosts_metrics_live_in_registries_of_their_own() -> None:
    # The same names twice in one process: no DuplicatedTimeseries (an outbox made without
    # a registry gets one of its own too), and no shared counts.
    DeliveryMetrics()
    DeliveryMetrics()
    first_registry, second_registry = CollectorRegistry(), CollectorRegistry()
    DeliveryMetrics(first_registry).received("CAR", Outcome.PROCESSED)
    DeliveryMetrics(second_registry)
    key = _key("scfed_messages_received_total", tot="CAR", outcome="processed")
    assert _values(generate_latest(first_registry))[key] == 1
    assert key not in _values(generate_latest(second_registry))


def test_a_labelled_gauge_has_one_sample_per_label_tuple() -> None:
    family = labelled_gauge("scfed_test", "A test.", ["a", "b"], {("x", "1"): 2, ("y", "2"): 3})
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"a": "x", "b": "1"}, 2),
        ({"a": "y", "b": "2"}, 3),
    ]


async def test_a_scrape_before_the_database_is_connected_leaves_its_series_out() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    values = _values(await ServiceMetrics(db, ready=lambda: False).exposition())
    assert values[_key("scfed_metrics_database_up")] == 0
    assert values[_key("scfed_ready")] == 0
    assert not [name for name, _ in values if name.startswith("scfed_outbox")]


async def test_a_read_that_fails_is_logged_and_leaves_the_database_series_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}")
    await db.connect([RuntimeBase.metadata])
    try:
        metrics = ServiceMetrics(db, ready=lambda: True)
        read = _values(await metrics.exposition())
        assert read[_key("scfed_metrics_database_up")] == 1
        assert read[_key("scfed_outbox_messages", status="pending")] == 0

        async def broken(_session: AsyncSession) -> Iterable[Metric]:
            raise RuntimeError("a bug in a service's read")

        metrics.read_at_scrape(broken)
        failed = _values(await metrics.exposition())
    finally:
        await db.dispose()
    assert failed[_key("scfed_metrics_database_up")] == 0
    assert _key("scfed_outbox_messages", status="pending") not in failed
    assert failed[_key("scfed_ready")] == 1
    assert "a bug in a service's read" in caplog.text
