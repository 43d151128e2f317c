"""Prometheus metrics at each HTTP edge (`GET /metrics`), read with prometheus_client's own
parser: the counters follow the bookings through the federation, the outbox gauges show what
waits, each service adds its domain's series to a registry of its own, and the route is open,
answers before the service is ready, and survives a database outage without a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from services.biometrics.params import DEFAULT_FPIR
from services.federation import Agency
from services.runtime.models import OutboxMessage, OutboxStatus
from services.runtime.ports import free_port
from services.runtime.server import ServiceHost
from services.runtime.tls import init_certificates
from tests.federation import DatabaseChoice, Federation, make_host
from tests.integration.test_outages import database_out
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

CA = "CA0190000"


@dataclass
class Scrape:
    """One answer of /metrics, parsed."""

    samples: list[Sample]

    @classmethod
    def of(cls, text: str) -> Scrape:
        """Parses Prometheus' text format."""
        families = text_string_to_metric_families(text)
        return cls([sample for family in families for sample in family.samples])

    def names(self) -> set[str]:
        """Every sample name in the answer."""
        return {s.name for s in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample with this name and exactly these labels."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return float(found[0])

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples with this name whose labels include these (0 if none)."""
        return sum(
            s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()
        )

    def labelled(self, name: str, label: str) -> dict[str, float]:
        """The samples of `name` by the value of one label."""
        return {s.labels[label]: s.value for s in self.samples if s.name == name}


async def scrape(client: httpx.AsyncClient, base_url: str) -> Scrape:
    """GET /metrics, checked for its status and content type, parsed."""
    r = await client.get(f"{base_url}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return Scrape.of(r.text)


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation, with an HTTP client for the SIB."""
    async with scenario_in(federation) as s:
        yield s


async def _book_three(scenario: Scenario) -> None:
    """Two bookings that IDENT matches, to a Level 1 and a Level 2 detainer, and one it does
    not, each answered, then every outbox drained."""
    matched = scenario.subject()
    await scenario.in_ident(matched, "ENTRY_WITHOUT_INSPECTION")
    await scenario.in_iafis(matched, [("1201", 1825)])
    overstay = scenario.subject()
    await scenario.in_ident(overstay, "VISA_OVERSTAY")
    tcns = [
        await scenario.book(matched, CA, ("2399",)),
        await scenario.book(overstay, CA, ("2399",)),
        await scenario.book(scenario.subject(), CA, ("2399",)),
    ]
    for tcn in tcns:
        assert (await scenario.final(tcn))["status"] == "answered"
    for tcn in tcns[:2]:
        await scenario.detainers_for(tcn, CA, expect=1)
    await scenario.quiet()


async def test_counters_follow_bookings_through_the_federation(scenario: Scenario) -> None:
    fed = scenario.fed
    async with httpx.AsyncClient(timeout=30) as client:
        before = {name: await scrape(client, url) for name, url in fed.http_urls().items()}
        await _book_three(scenario)
        after = {name: await scrape(client, url) for name, url in fed.http_urls().items()}
        outbox = {
            name: (await client.get(f"{url}/v1/outbox")).json()
            for name, url in fed.http_urls().items()
        }

    def moved(service: Agency, name: str, **labels: str) -> float:
        return after[service].total(name, **labels) - before[service].total(name, **labels)

    sent, received = "scfed_messages_sent_total", "scfed_messages_received_total"
    assert moved(Agency.SIB, sent, tot="CAR", outcome="delivered") == 3
    assert moved(Agency.CJIS_IAFIS, received, tot="CAR", outcome="processed") == 3
    assert moved(Agency.CJIS_IAFIS, sent, tot="SRE", outcome="delivered") == 3
    assert moved(Agency.IDENT, received, tot="IDENT-SEARCH", outcome="processed") == 3
    # Every delivery a sender counted, a receiver processed once (no faults: no repeats).
    delivered = sum(moved(s, sent, outcome="delivered") for s in Agency)
    processed = sum(moved(s, received, outcome="processed") for s in Agency)
    assert delivered == processed > 3 * 4
    assert sum(moved(s, sent, outcome="dead") for s in Agency) == 0
    # Each delivery's latency is observed, once, under its TOT.
    latencies = moved(Agency.SIB, "scfed_delivery_seconds_count", tot="CAR")
    assert latencies == 3
    assert 0 < moved(Agency.SIB, "scfed_delivery_seconds_sum", tot="CAR") < 30
    # The outbox gauges say what /v1/outbox says; nothing waits.
    for service in Agency:
        by_status = after[service].labelled("scfed_outbox_messages", "status")
        assert by_status == {status: float(n) for status, n in outbox[service].items()}
        assert after[service].value("scfed_outbox_oldest_pending_age_seconds") == 0
        assert after[service].value("scfed_metrics_database_up") == 1
        assert after[service].value("scfed_ready") == 1


async def test_each_service_shows_its_own_domain_series(scenario: Scenario) -> None:
    fed = scenario.fed
    async with httpx.AsyncClient(timeout=30) as client:
        seeded = {name: await scrape(client, url) for name, url in fed.http_urls().items()}
        await _book_three(scenario)
        scrapes = {name: await scrape(client, url) for name, url in fed.http_urls().items()}
        ident_stats = (await client.get(f"{fed.hosts[Agency.IDENT].http_url}/v1/stats")).json()

    def grew(service: Agency, name: str) -> float:
        return scrapes[service].value(name) - seeded[service].value(name)

    ident = scrapes[Agency.IDENT]
    assert ident.value("scfed_ident_gallery_size") == ident_stats["gallery_size"]
    assert grew(Agency.IDENT, "scfed_ident_gallery_size") == 2  # the two enrolled subjects
    assert ident.value("scfed_ident_search_seconds_count", rpc="Search") == 3
    # The threshold in use, for the target FPIR at the gallery size it was computed for.
    assert ident.value("scfed_ident_match_threshold") == ident_stats["match_threshold"]
    computed_for = ident_stats["threshold_gallery_size"]
    assert ident.value("scfed_ident_match_threshold_gallery_size") == computed_for
    assert abs(computed_for - ident_stats["gallery_size"]) <= max(1, 0.01 * computed_for)
    assert ident_stats["target_fpir"] == DEFAULT_FPIR
    assert 0 < ident.value("scfed_ident_search_seconds_sum", rpc="Search") < 5

    iafis = scrapes[Agency.CJIS_IAFIS]
    # The enrolled subject, and a new FBI number for each of the two others.
    assert grew(Agency.CJIS_IAFIS, "scfed_iafis_master_file_size") == 3
    assert iafis.value("scfed_iafis_search_seconds_count", rpc="SubmitCar") == 3

    lesc = scrapes[Agency.LESC]
    queue = {
        (s.labels["route"], s.labels["state"]): s.value
        for s in lesc.samples
        if s.name == "scfed_lesc_queue_length"
    }
    assert set(queue) == {
        (route, state)
        for route in ("automated", "analyst", "vtc")
        for state in ("queued", "in_work")
    }
    assert sum(queue.values()) == 0  # the tests' analysts take no agency time
    answered = lesc.labelled("scfed_lesc_answered_cases", "late")
    assert answered == {"false": 2.0, "true": 0.0}
    assert lesc.value("scfed_lesc_overdue_cases") == 0
    assert lesc.value("scfed_lesc_analysts_on_duty") >= 1

    field = scrapes[Agency.ICE_FIELD]
    assert field.total("scfed_ice_field_detainers") == 2
    assert field.value("scfed_ice_field_detainers", level="1", state="detainer_issued") == 1
    assert field.value("scfed_ice_field_detainers", level="2", state="detainer_issued") == 1
    assert len(field.labelled("scfed_ice_field_detainers", "state")) == 10  # every case state
    assert field.value("scfed_ice_field_beds") > 0
    assert field.value("scfed_ice_field_atd_slots") > 0
    assert 0 <= field.value("scfed_ice_field_beds_occupied") <= field.value("scfed_ice_field_beds")
    assert field.value("scfed_ice_field_atd_in_use") == 0

    # Each host has its registry: a service's series are in its answer only, and nothing
    # went to prometheus_client's global registry.
    own = {
        Agency.IDENT: "scfed_ident_gallery_size",
        Agency.CJIS_IAFIS: "scfed_iafis_master_file_size",
        Agency.LESC: "scfed_lesc_overdue_cases",
        Agency.ICE_FIELD: "scfed_ice_field_beds",
    }
    for service, series in own.items():
        assert [s for s in Agency if series in scrapes[s].names()] == [service]
    assert scrapes[Agency.SIB].total("scfed_messages_received_total", tot="CAR") == 0
    registries = {id(host.metrics.registry) for host in fed.hosts.values()}
    assert len(registries) == len(Agency) and id(REGISTRY) not in registries
    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("scfed_")]


async def test_outbox_gauges_show_a_waiting_message_and_a_dead_letter(tmp_path: Path) -> None:
    host = make_host(Agency.LESC, DatabaseChoice("sqlite", tmp_path))
    await host.start()
    try:
        written = datetime.now(UTC) - timedelta(minutes=5)
        async with host.runtime.db.session() as session:
            for n, status in enumerate((OutboxStatus.PENDING, OutboxStatus.DEAD)):
                session.add(
                    OutboxMessage(
                        message_id=f"m-{n}",
                        peer=Agency.CJIS_IAFIS,
                        method="/scfed.test.Nobody/Takes",
                        tot="IAR",
                        tcn="CA0190000T1",
                        payload=b"",
                        status=status,
                        attempts=1,
                        created_at=written,
                        # Not due for hours: the worker leaves it waiting.
                        next_attempt_at=written + timedelta(hours=3),
                    )
                )
        async with httpx.AsyncClient(timeout=30) as client:
            metrics = await scrape(client, host.http_url)
    finally:
        await host.stop()
    by_status = metrics.labelled("scfed_outbox_messages", "status")
    assert by_status == {"pending": 1, "inflight": 0, "delivered": 0, "dead": 1}
    assert 300 <= metrics.value("scfed_outbox_oldest_pending_age_seconds") < 400


async def test_metrics_need_no_credentials_with_tls_on(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    host = make_host(Agency.IDENT, DatabaseChoice("sqlite", tmp_path), tls="on", tls_dir=certs)
    await host.start()
    try:
        async with httpx.AsyncClient(base_url=host.http_url, timeout=30) as client:
            # An operator's route wants the token; the metrics, like /healthz, do not.
            assert (await client.post("/v1/outbox/dead/requeue")).status_code == 401
            metrics = await scrape(client, host.http_url)
            spec = (await client.get("/openapi.json")).json()
    finally:
        await host.stop()
    assert metrics.value("scfed_ident_gallery_size") == 0
    assert 401 not in spec["paths"]["/metrics"]["get"]["responses"]


async def test_a_database_outage_leaves_its_series_out_and_is_no_500(tmp_path: Path) -> None:
    host = make_host(Agency.LESC, DatabaseChoice("sqlite", tmp_path), readiness_probe_s=0.1)
    await host.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            async with database_out(host.runtime.db, tmp_path):
                outage = await scrape(client, host.http_url)

                async def not_ready() -> bool:
                    return (await scrape(client, host.http_url)).value("scfed_ready") == 0

                await eventually(not_ready, timeout=10, what="scfed_ready 0")
            back = await scrape(client, host.http_url)
    finally:
        await host.stop()
    assert outage.value("scfed_metrics_database_up") == 0
    # The counters and the in-memory gauges are there; what the database holds is not.
    assert {"scfed_ready", "scfed_lesc_analysts_on_duty"} <= outage.names()
    assert not {"scfed_outbox_messages", "scfed_lesc_queue_length"} & outage.names()
    assert back.value("scfed_metrics_database_up") == 1
    assert "scfed_lesc_queue_length" in back.names()


async def test_metrics_answer_while_the_service_waits_for_its_database(tmp_path: Path) -> None:
    host: ServiceHost = make_host(
        Agency.IDENT,
        DatabaseChoice("sqlite", tmp_path),
        database_url=f"postgresql+asyncpg://scfed@127.0.0.1:{free_port()}/nothing",
        db_start_attempts=100,
    )
    starting = asyncio.create_task(host.start())
    try:

        async def listening() -> bool:
            return host.http_port != 0

        await eventually(listening, timeout=10, what="the HTTP edge")
        async with httpx.AsyncClient(timeout=30) as client:
            metrics = await scrape(client, host.http_url)
            outbox = await client.get(f"{host.http_url}/v1/outbox")
    finally:
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    assert outbox.status_code == 503
    assert metrics.value("scfed_metrics_database_up") == 0
    assert metrics.value("scfed_ready") == 0
    assert "scfed_outbox_messages" not in metrics.names()
    # The service's own metrics come once it is initialised.
    assert "scfed_ident_gallery_size" not in metrics.names()
