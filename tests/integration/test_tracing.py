"""Distributed tracing through five real services: one trace per booking, across the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, MetaData, Table, insert, select
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.trace import trace_ids, trace_online
from services.federation import Agency
from services.runtime import tracing
from services.runtime.db import Database
from services.runtime.models import Direction, OutboxMessage, Outcome, RuntimeBase
from services.runtime.tracing import TRACEPARENT_HEADER
from tests.federation import DatabaseChoice, Federation, make_host, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

CA = "CA0190000"
# The agencies a match with a detainer passes through: all five.
MATCH_PATH = {str(agency) for agency in Agency}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Where the traced federation's spans go."""
    return InMemorySpanExporter()


@pytest.fixture
async def traced(db: DatabaseChoice, spans: InMemorySpanExporter) -> AsyncIterator[Scenario]:
    """The fixed world in a federation whose five hosts each have an SDK tracer provider (their
    own service name) exporting to `spans`."""
    providers = {name: tracing.sdk_provider(name, [SimpleSpanProcessor(spans)]) for name in Agency}
    own = {name: {"tracer_provider": provider} for name, provider in providers.items()}
    async with (
        running_federation(
            db,
            sib=own[Agency.SIB],
            cjis_iafis=own[Agency.CJIS_IAFIS],
            ident=own[Agency.IDENT],
            lesc=own[Agency.LESC],
            ice_field=own[Agency.ICE_FIELD],
        ) as fed,
        scenario_in(fed) as scenario,
    ):
        yield scenario
    for provider in providers.values():
        provider.shutdown()


async def _journal(fed: Federation, tcn: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    async with httpx.AsyncClient() as client:
        for host in fed.hosts.values():
            r = await client.get(f"{host.http_url}/v1/journal/{tcn}")
            entries.extend(r.json())
    return entries


def _hex(number: int, digits: int) -> str:
    return format(number, f"0{digits}x")


def _of_trace(spans: Sequence[ReadableSpan], trace_id: str) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and _hex(s.context.trace_id, 32) == trace_id]


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def _attr(span: ReadableSpan, name: str) -> object:
    return (span.attributes or {}).get(name)


def _parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else _hex(span.parent.span_id, 16)


def _span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return _hex(span.context.span_id, 16)


async def _rows(fed: Federation, tcn: str) -> list[tuple[str, OutboxMessage]]:
    """Every outbox row of `tcn`, with the service that wrote it."""
    rows: list[tuple[str, OutboxMessage]] = []
    for name, host in fed.hosts.items():
        async with host.runtime.db.session() as session:
            found = await session.scalars(select(OutboxMessage).where(OutboxMessage.tcn == tcn))
            rows.extend((name, row) for row in found)
    return rows


async def _booked_match(scenario: Scenario) -> str:
    """A booking that matches in IDENT and gets a detainer, every message delivered."""
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    await scenario.in_iafis(subject, [("1201", 1825)])
    tcn = await scenario.book(subject, CA, ("2399",))
    await scenario.final(tcn)
    await scenario.detainers_for(tcn, CA, expect=1)
    await scenario.quiet()
    return tcn


async def test_a_booking_is_one_trace_through_every_agency_and_the_outbox(
    traced: Scenario, spans: InMemorySpanExporter
) -> None:
    fed = traced.fed
    tcn = await _booked_match(traced)
    detainer = next(m for m in await traced.inbox(CA) if m["kind"] == "I-247" and m["tcn"] == tcn)
    notice = {"ori": CA, "detainer_id": detainer["body"]["detainer"]["detainer_id"]}
    r = await traced.client.post("/v1/release-notices", json=notice)
    assert r.status_code == 202, r.text
    await traced.quiet()

    entries = await _journal(fed, tcn)
    ids = {e["trace_id"] for e in entries}
    assert len(ids) == 1, ids
    trace_id = ids.pop()
    assert len(trace_id) == 32
    received = {(e["service"], e["tot"]) for e in entries if e["direction"] == "received"}
    assert {("ice_field", "RELEASE"), ("sib", "I-247"), ("lesc", "IAQ")} <= received

    in_trace = _of_trace(spans.get_finished_spans(), trace_id)
    assert {_service(s) for s in in_trace} == MATCH_PATH
    root = [s for s in in_trace if s.parent is None]
    assert [(s.name, _service(s)) for s in root] == [("POST /v1/bookings", "sib")]
    by_id = {_span_id(s): s for s in in_trace}
    # Every span but the root hangs from another span of the same trace.
    assert all(_parent_id(s) in by_id for s in in_trace if s.parent is not None)

    rows = [(writer, row) for writer, row in await _rows(fed, tcn) if row.tot != "ERRT"]
    assert rows and all(row.delivered_at is not None for _, row in rows)
    for writer, row in rows:
        ids_stored = tracing.ids_of(row.traceparent)
        assert ids_stored is not None and ids_stored[0] == trace_id, row.tot
        waits = [
            s
            for s in in_trace
            if s.name == "outbox.wait" and _attr(s, "scfed.message_id") == row.message_id
        ]
        assert len(waits) == 1, row.tot
        wait = waits[0]
        assert wait.start_time is not None and wait.end_time is not None
        assert wait.end_time - wait.start_time >= 0
        # Its parent is the span that wrote the message, in the writer's service.
        assert _parent_id(wait) == ids_stored[1]
        assert _service(by_id[ids_stored[1]]) == writer == _service(wait)
        # The delivery's context reached the peer: its server span is the delivery's child.
        deliver = next(
            s
            for s in in_trace
            if s.name == "outbox.deliver" and _attr(s, "scfed.message_id") == row.message_id
        )
        assert _attr(deliver, "scfed.outcome") == "delivered"
        served = [s for s in in_trace if _parent_id(s) == _span_id(deliver)]
        assert [_service(s) for s in served] == [row.peer], row.tot
        inbox = [
            s
            for s in in_trace
            if s.name == "inbox.receive" and _attr(s, "scfed.message_id") == row.message_id
        ]
        assert [_parent_id(s) for s in inbox] == [_span_id(served[0])]
        assert _attr(inbox[0], "scfed.outcome") == "processed"
        assert {"scfed.tot", "scfed.tcn", "scfed.peer"} <= set(inbox[0].attributes or {})

    online, _ = await trace_online(tcn, fed.addresses())
    assert trace_ids(online) == [trace_id]
    urls = [f"--url={name}={url}" for name, url in fed.http_urls().items()]
    shown = await asyncio.to_thread(
        CliRunner().invoke, app, ["trace", tcn, "--sib-url", fed.sib_url, *urls]
    )
    assert shown.exit_code == 0, shown.output
    assert f"trace id {trace_id}" in shown.output


async def test_an_leas_traceparent_is_honoured_and_a_malformed_one_ignored(
    traced: Scenario, spans: InMemorySpanExporter
) -> None:
    lea_trace, lea_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    given = {
        f"00-{lea_trace}-{lea_span}-01": lea_trace,
        "00-not-a-trace-01": None,
        f"00-{'0' * 32}-{lea_span}-01": None,
        "ff" * 40: None,
    }
    for number, (header, expected) in enumerate(given.items()):
        subject = traced.subject()
        body = subject.booking_body(CA, f"BK-TP{number}", ("2399",))
        r = await traced.client.post(
            "/v1/bookings", json=body, headers={TRACEPARENT_HEADER: header}
        )
        assert r.status_code == 202, (header, r.text)
        tcn = r.json()["tcn"]
        await traced.final(tcn)
        accepted = [
            e
            for e in await _journal(traced.fed, tcn)
            if e["service"] == "sib" and e["outcome"] == Outcome.ACCEPTED
        ]
        trace_id = accepted[0]["trace_id"]
        assert len(trace_id) == 32
        server = [
            s
            for s in _of_trace(spans.get_finished_spans(), trace_id)
            if s.name == "POST /v1/bookings"
        ]
        assert len(server) == 1
        if expected is None:
            assert trace_id != lea_trace and server[0].parent is None, header
        else:
            assert trace_id == expected and _parent_id(server[0]) == lea_span


async def test_a_message_the_poll_delivers_after_a_restart_joins_its_trace(
    traced: Scenario, spans: InMemorySpanExporter, db: DatabaseChoice
) -> None:
    fed = traced.fed
    await fed.hosts[Agency.LESC].stop()
    subject = traced.subject()
    await traced.in_ident(subject, "VISA_OVERSTAY")
    tcn = await traced.book(subject, CA)

    async def iaq_tried() -> bool:
        async with fed.hosts[Agency.CJIS_IAFIS].runtime.db.session() as session:
            attempts = await session.scalar(
                select(OutboxMessage.attempts).where(
                    OutboxMessage.tot == "IAQ", OutboxMessage.tcn == tcn
                )
            )
        return (attempts or 0) >= 1

    await eventually(iaq_tried, what="the IAQ's first attempt while LESC is down")
    # The sender restarts too: the IAQ's context now comes from its row alone.
    await fed.hosts[Agency.CJIS_IAFIS].stop()
    await fed.restart(Agency.LESC, db)
    await fed.restart(Agency.CJIS_IAFIS, db)
    await traced.final(tcn)
    await traced.quiet()

    entries = await _journal(fed, tcn)
    assert len({e["trace_id"] for e in entries}) == 1
    trace_id = entries[0]["trace_id"]
    in_trace = _of_trace(spans.get_finished_spans(), trace_id)
    iaq = [(w, r) for w, r in await _rows(fed, tcn) if r.tot == "IAQ"]
    assert len(iaq) == 1 and iaq[0][1].attempts >= 2
    message_id = iaq[0][1].message_id
    attempts = sorted(
        int(str(_attr(s, "scfed.attempt")))
        for s in in_trace
        if s.name == "outbox.deliver" and _attr(s, "scfed.message_id") == message_id
    )
    assert attempts[-1] >= 2
    received = [
        s
        for s in in_trace
        if s.name == "inbox.receive" and _attr(s, "scfed.message_id") == message_id
    ]
    assert [_service(s) for s in received] == [Agency.LESC]


async def test_with_tracing_off_nothing_is_traced_and_journal_trace_ids_are_empty(
    db: DatabaseChoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint in the environment, but tracing off wins.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    off: dict[str, Any] = {"tracing": "off"}
    async with (
        running_federation(db, sib=off, cjis_iafis=off, ident=off, lesc=off, ice_field=off) as fed,
        scenario_in(fed) as scenario,
    ):
        for host in fed.hosts.values():
            assert host.tracer_provider is None and host.runtime.outbox.tracer is None
        subject = scenario.subject()
        await scenario.in_ident(subject, "VISA_OVERSTAY")
        tcn = await scenario.book(subject, CA)
        await scenario.final(tcn)
        await scenario.quiet()
        entries = await _journal(fed, tcn)
        assert {e["service"] for e in entries} >= {"sib", "cjis_iafis", "ident", "lesc"}
        assert {e["trace_id"] for e in entries} == {""}
        assert all(row.traceparent is None for _, row in await _rows(fed, tcn))


def _previous_version(metadata: MetaData) -> MetaData:
    """The runtime's tables as the version before tracing made them."""
    new = {"traceparent", "tracestate", "trace_id", "span_id"}
    old = MetaData()
    for table in metadata.sorted_tables:
        columns = [
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
            if c.name not in new
        ]
        Table(table.name, old, *columns)
    return old


async def test_a_database_of_the_previous_version_gets_the_new_columns_and_serves(
    db: DatabaseChoice, spans: InMemorySpanExporter
) -> None:
    old = _previous_version(RuntimeBase.metadata)
    host = make_host(Agency.SIB, db)
    previous = Database(host.runtime.db.url, schema=host.runtime.db.schema)
    await previous.connect([old])
    async with previous.engine.begin() as conn:
        await conn.execute(
            insert(old.tables["journal"]).values(
                message_id="m-old",
                tcn="TCN-OLD",
                tot="BOOKING",
                direction=Direction.RECEIVED,
                peer="lea:CA0190000",
                at=datetime(2024, 1, 1, tzinfo=UTC),
                outcome=Outcome.ACCEPTED,
                detail="before tracing",
            )
        )
    await previous.dispose()

    provider = tracing.sdk_provider(Agency.SIB, [SimpleSpanProcessor(spans)])
    traced = make_host(Agency.SIB, db, tracer_provider=provider)
    await traced.start()
    try:
        async with httpx.AsyncClient(base_url=traced.http_url) as client:
            r = await client.get("/v1/journal/TCN-OLD")
        assert r.status_code == 200
        assert [(e["detail"], e["trace_id"]) for e in r.json()] == [("before tracing", "")]
    finally:
        await traced.stop()
        provider.shutdown()
