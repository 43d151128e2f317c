"""The console's pages without a browser: bad input and services that do not answer are pages
that say so (never a 500), nothing on a page is fetched from elsewhere, and a booking's
journal entries become the arrows of its path."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.console import charts, sequence
from services.console.app import create_app
from services.console.server import ConsoleServer, bind
from services.console.sources import ConsoleConfig, message_totals
from services.federation import Agency
from services.runtime.ports import free_port
from tests.console.support import serving_console
from tests.federation import Federation

STATIC = Path(__file__).resolve().parents[2] / "services" / "console" / "static"
# What a page may point at: its own routes and assets, or a fragment of itself.
_REFERENCE = re.compile(r"""\b(?:src|href|action|data-refresh)\s*=\s*["']([^"']*)["']""")
# The one URL a page may carry: SVG's namespace name, which is never fetched.
_SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'


@pytest.fixture
def down() -> Iterator[TestClient]:
    """The console over five edges that do not answer (closed loopback ports)."""
    urls = {agency.value: f"http://127.0.0.1:{free_port()}" for agency in Agency}
    with TestClient(create_app(ConsoleConfig(urls=urls, timeout_s=1.0))) as client:
        yield client


def _external_references(html: str) -> list[str]:
    found = [ref for ref in _REFERENCE.findall(html) if not ref.startswith(("/", "#"))]
    rest = html.replace(_SVG_NAMESPACE, "")
    return found + re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", rest)


def test_every_page_loads_nothing_from_elsewhere(down: TestClient) -> None:
    for path in ("/", "/bookings", "/dead-letters", "/measures", "/bookings/CA0123ABCD"):
        html = down.get(path).text
        assert "<html" in html, path
        assert _external_references(html) == [], path
    for asset in STATIC.iterdir():
        text = asset.read_text()
        assert not re.search(r"https?:|//[a-z]|@import|url\(", text), asset.name
        assert down.get(f"/static/{asset.name}").status_code == 200


def test_services_that_do_not_answer_are_named_not_a_500(down: TestClient) -> None:
    overview = down.get("/")
    assert overview.status_code == 200
    assert overview.text.count("unreachable") == len(Agency)
    assert down.get("/fragments/overview").text.count('class="not-ready"') == len(Agency)
    bookings = down.get("/bookings")
    assert bookings.status_code == 200 and "could not be read" in bookings.text
    measures = down.get("/measures")
    assert measures.status_code == 200 and "Not read" in measures.text
    dead = down.get("/dead-letters")
    assert dead.status_code == 200 and dead.text.count("Not read:") == len(Agency)
    trace = down.get("/bookings/CA0123ABCD")
    assert trace.status_code == 503 and "No service answered" in trace.text


@pytest.mark.parametrize("tcn", ["CA 01", "<script>", "x" * 65, "-CA01", "CA01%3B"])
def test_a_malformed_tcn_is_a_400_page(down: TestClient, tcn: str) -> None:
    for r in (down.get(f"/bookings/{tcn}"), down.get("/bookings", params={"tcn": tcn})):
        assert r.status_code == 400, tcn
        assert "is not a TCN" in r.text and "<script>" not in r.text


def test_a_search_for_a_tcn_leads_to_its_path(down: TestClient) -> None:
    r = down.get("/bookings", params={"tcn": " CA0123ABCD "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/bookings/CA0123ABCD"


def test_an_unknown_path_or_service_is_a_404_page(down: TestClient) -> None:
    r = down.get("/no/such/page")
    assert r.status_code == 404 and "<html" in r.text
    r = down.post("/dead-letters/nobody/requeue")
    assert r.status_code == 404 and "no service named" in r.text


def test_a_requeue_posted_from_another_site_is_refused(down: TestClient) -> None:
    r = down.post("/dead-letters/sib/requeue", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = down.post("/dead-letters/sib/requeue", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_a_requeue_at_a_service_that_does_not_answer_says_so(down: TestClient) -> None:
    r = down.post("/dead-letters/lesc/requeue", headers={"Origin": "http://testserver"})
    assert r.status_code == 502 and "did not answer" in r.text


async def test_an_unknown_tcn_is_a_404_and_the_live_agencies_are_ready(
    federation: Federation,
) -> None:
    async with (
        serving_console(federation.http_urls()) as console,
        httpx.AsyncClient(base_url=console) as client,
    ):
        r = await client.get("/bookings/CA00000000000000000")
        assert r.status_code == 404 and "journal mentions TCN CA00000000000000000" in r.text
        overview = (await client.get("/fragments/overview")).text
        assert overview.count('class="ready"') == len(Agency)
        dead = await client.get("/dead-letters")
        assert dead.status_code == 200 and dead.text.count("None.") == len(Agency)


def _entry(service: str, direction: str, tot: str, peer: str, at: datetime, **kw: Any) -> Any:
    return {
        "service": service,
        "direction": direction,
        "tot": tot,
        "peer": peer,
        "at": at.isoformat(),
        "outcome": kw.get("outcome", "processed" if direction == "received" else "delivered"),
        "message_id": kw.get("message_id", f"{tot}-1"),
        "tcn": "CA01",
        "detail": "",
    }


def test_journal_entries_pair_into_arrows_with_their_wait() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ms = timedelta(milliseconds=1)
    entries = [
        _entry("cjis_iafis", "received", "CAR", "sib", t0 + 30 * ms),
        _entry("sib", "received", "BOOKING", "lea:CA0190000", t0, outcome="accepted"),
        _entry("sib", "sent", "CAR", "cjis_iafis", t0 + 10 * ms),
        _entry("cjis_iafis", "sent", "SRE", "sib", t0 + 40 * ms, outcome="fault"),
        _entry("cjis_iafis", "sent", "SRE", "sib", t0 + 40 * ms, outcome="dead"),
    ]
    arrows = sequence.arrows(entries)
    assert [(a.tot, a.sender, a.receiver, a.outcome) for a in arrows] == [
        ("BOOKING", "lea", "sib", "accepted"),
        ("CAR", "sib", "cjis_iafis", "delivered"),
        ("SRE", "cjis_iafis", "sib", "dead"),
    ]
    assert arrows[1].wait_ms == pytest.approx(20.0) and arrows[1].label == "CAR · 20 ms"
    assert arrows[2].faults == 1 and arrows[2].label == "SRE · dead"
    drawing = sequence.svg(arrows, title="<CA01>")
    assert drawing.count('class="lane"') == len(sequence.LANES)
    assert 'data-tot="SRE"' in drawing and "&lt;CA01&gt;" in drawing


def test_charts_draw_a_bar_per_value_and_a_line_per_series() -> None:
    bars = charts.bar_chart("t", [("a", 3.0), ("b", None)], unit="%", maximum=100)
    assert bars.count("<rect") == 1 and "no value yet" in bars
    lines = charts.line_chart("t", [("x", [1.0, 2.0, 3.0]), ("y", [0.0, 0.0, 1.0])])
    assert lines.count("<polyline") == 2
    assert "collecting samples" in charts.line_chart("t", [("x", [1.0])])


def test_message_totals_read_processed_and_delivered_counters() -> None:
    text = (
        "# TYPE scfed_messages_received counter\n"
        'scfed_messages_received_total{tot="CAR",outcome="processed"} 3.0\n'
        'scfed_messages_received_total{tot="CAR",outcome="duplicate"} 9.0\n'
        "# TYPE scfed_messages_sent counter\n"
        'scfed_messages_sent_total{tot="SRE",outcome="delivered"} 2.0\n'
        'scfed_messages_sent_total{tot="SRE",outcome="retry"} 5.0\n'
    )
    assert message_totals(text) == (3.0, 2.0)


def test_the_console_serves_in_a_thread_beside_scfed_up_and_stops() -> None:
    urls = {Agency.SIB.value: f"http://127.0.0.1:{free_port()}"}
    server = ConsoleServer(create_app(ConsoleConfig(urls=urls)), bind("127.0.0.1", 0))
    server.start_in_thread()
    try:
        assert httpx.get(server.url, timeout=5).status_code == 200
    finally:
        server.stop()
    assert server.thread is not None and not server.thread.is_alive()
    with pytest.raises(OSError, match="is not free"), socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind("127.0.0.1", taken.getsockname()[1])


def test_healthz_answers_without_asking_the_services(down: TestClient) -> None:
    # The containers' probe (compose.yaml, deploy/base/console.yaml): the console serves even
    # while every edge is down, so an outage of the federation never restarts it.
    response = down.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _measures_edges(request: httpx.Request) -> httpx.Response:
    """The SIB's, LESC's and the field offices' answers the measures page reads."""
    host, path = request.url.host, request.url.path
    answers: dict[tuple[str, str], Any] = {
        ("sib", "/v1/measures"): {
            "bookings": 10,
            "bookings_checked_against_ident": 6,
            "rollout_phase_1_jurisdictions": 2,
            "rollout_phase_1_criminal_alien_share": 0.35,
            "rollout_phase_1_first_activation": 20081001,
            "rollout_phase_1_last_activation": 20090301,
            "rollout_phase_1_bookings": 8,
            "rollout_phase_1_bookings_checked_against_ident": 6,
        },
        ("sib", "/v1/bookings-summary"): {"detainers": {"level_1": 2}},
        ("lesc", "/v1/measures"): {"iaq": 4, "iar": 4, "level_1_iar": 2, "level_1_iar_late": 1},
        ("ice", "/v1/measures"): {
            "office_TXICE0100_steps": 6,
            "office_TXICE0100_level_1_taken": 2,
        },
        ("ice", "/v1/cases-summary"): {"by_state": {"removed": 2}},
        ("ice", "/v1/referrals"): [
            {
                "referral_id": "<script>R1",
                "fin": "F1",
                "us_attorney_office": "USAO-TXS",
                "field_office": "TXICE0100",
                "booking_tcn": "TX0100ABC",
                "statute": "8 USC 1326",
                "status": "referred",
                "referred_at": "2010-01-02T00:00:00Z",
            }
        ],
    }
    if (host, path) not in answers:
        return httpx.Response(404, json={"detail": "not here"})
    return httpx.Response(200, json=answers[(host, path)])


def test_the_measures_page_shows_goal_3_3_the_rollout_phases_and_the_referrals() -> None:
    urls = {"sib": "http://sib", "lesc": "http://lesc", "ice_field": "http://ice"}
    app = create_app(ConsoleConfig(urls=urls), transport=httpx.MockTransport(_measures_edges))
    with TestClient(app) as client:
        html = client.get("/measures").text
    # LESC answered one Level 1 IAR of two late: below its target; the office took both.
    lesc = re.search(r'<tr data-program="LESC integrated record checks">.*?</tr>', html, re.S)
    assert lesc and "50.0% (1/2)" in lesc.group(0)
    assert '<span class="bad">no</span>' in lesc.group(0)
    office = re.search(r'<tr data-program="[^"]*TXICE0100">.*?</tr>', html, re.S)
    assert office and "100.0% (2/2)" in office.group(0) and "yes" in office.group(0)
    phase = re.search(r'<tr data-phase="1">.*?</tr>', html, re.S)
    assert phase and "1 (FY2009)" in phase.group(0) and "2008-10-01 .. 2009-03-01" in phase.group(0)
    assert "referred: 1" in html and 'href="/bookings/TX0100ABC"' in html
    assert "<script>R1" not in html and "&lt;script&gt;R1" in html  # escaped, never run
