"""Control of a running federation over the HTTP edges: stepping and re-pacing agency clocks,
and resetting every service to its configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.federation import Agency
from services.runtime.clock import AcceleratedClock, ManualClock
from services.runtime.models import RuntimeBase
from services.runtime.server import ServiceHost
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually, response_kinds

CA = "CA0190000"
START = datetime(2009, 10, 1, 23, 0, tzinfo=UTC)


@pytest.fixture
async def clocked(db: DatabaseChoice) -> AsyncIterator[tuple[Scenario, ManualClock]]:
    """LESC on a manual clock with 20-minute analysts, the field office accelerated, the rest
    on the real clock."""
    clock = ManualClock(START)
    lesc = {"clock": clock, "shifts": "06:00=3,22:00=1", "analyst_minutes": 20}
    field = {"clock": AcceleratedClock(10.0)}
    async with (
        running_federation(db, lesc=lesc, ice_field=field) as fed,
        scenario_in(fed) as s,
    ):
        yield s, clock


def _url(fed: Federation, agency: Agency, path: str) -> str:
    return f"{fed.hosts[agency].http_url}{path}"


async def test_advance_steps_a_manual_clock_by_seconds_or_duration(
    clocked: tuple[Scenario, ManualClock],
) -> None:
    s, clock = clocked
    async with httpx.AsyncClient() as client:
        r = await client.post(_url(s.fed, Agency.LESC, "/v1/clock/advance"), json={"seconds": 90})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "service": "lesc",
            "clock": "manual",
            "now": (START + timedelta(seconds=90)).isoformat(),
        }
        r = await client.post(
            _url(s.fed, Agency.LESC, "/v1/clock/advance"), json={"duration": "P2DT1H"}
        )
        assert r.status_code == 200, r.text
        shown = await client.get(_url(s.fed, Agency.LESC, "/v1/clock"))
    expected = START + timedelta(days=2, hours=1, seconds=90)
    assert clock.now() == expected
    assert datetime.fromisoformat(shown.json()["now"]) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"seconds": -1}, "only moves forward"),
        ({"seconds": 1e12}, "longer than the most allowed"),
        ({"duration": "P1Y"}, "years and months"),
        ({"duration": "-2h"}, "bad duration"),
        ({}, "exactly one"),
        ({"seconds": 5, "duration": "5s"}, "exactly one"),
        ({"seconds": "soon"}, "seconds"),
        ({"seconds": 5, "hours": 1}, "hours"),
    ],
)
async def test_advance_refuses_a_bad_step_with_422_and_leaves_the_clock(
    clocked: tuple[Scenario, ManualClock], body: dict[str, Any], reason: str
) -> None:
    s, clock = clocked
    async with httpx.AsyncClient() as client:
        r = await client.post(_url(s.fed, Agency.LESC, "/v1/clock/advance"), json=body)
    assert r.status_code == 422, r.text
    assert reason in r.text
    assert clock.now() == START


async def test_advance_is_refused_with_409_on_a_clock_that_is_not_manual(
    clocked: tuple[Scenario, ManualClock],
) -> None:
    s, _ = clocked
    async with httpx.AsyncClient() as client:
        real = await client.post(_url(s.fed, Agency.SIB, "/v1/clock/advance"), json={"seconds": 1})
        fast = await client.post(
            _url(s.fed, Agency.ICE_FIELD, "/v1/clock/advance"), json={"seconds": 1}
        )
    assert real.status_code == 409
    assert "real clock" in real.json()["detail"] and "SCFED_SIB_CLOCK=manual" in real.text
    assert fast.status_code == 409 and "accelerated:10" in fast.json()["detail"]


async def test_a_step_over_the_network_lets_the_lesc_analyst_finish(
    clocked: tuple[Scenario, ManualClock],
) -> None:
    s, _ = clocked
    subject = s.subject()
    await s.in_ident(subject, "LAWFUL_PERMANENT_RESIDENT")
    tcn = await s.book(subject, CA)
    await s.quiet()
    assert "IDR/IAR" not in response_kinds((await s.client.get(f"/v1/bookings/{tcn}")).json())
    async with httpx.AsyncClient() as client:
        r = await client.post(
            _url(s.fed, Agency.LESC, "/v1/clock/advance"), json={"duration": "20m"}
        )
        assert r.status_code == 200, r.text
    view = await s.final(tcn)
    assert "IDR/IAR" in response_kinds(view)


async def test_set_repaces_an_accelerated_clock_without_a_jump(
    clocked: tuple[Scenario, ManualClock],
) -> None:
    s, _ = clocked
    clock = s.fed.hosts[Agency.ICE_FIELD].runtime.clock
    assert isinstance(clock, AcceleratedClock)
    before = clock.now()
    async with httpx.AsyncClient() as client:
        r = await client.post(
            _url(s.fed, Agency.ICE_FIELD, "/v1/clock"), json={"spec": "accelerated:600"}
        )
    assert r.status_code == 200, r.text
    assert r.json()["clock"] == "accelerated:600" and clock.factor == 600
    changed = datetime.fromisoformat(r.json()["now"])
    assert before <= changed < before + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("agency", "spec", "status", "reason"),
    [
        (Agency.ICE_FIELD, "accelerated:-3", 422, "positive"),
        (Agency.ICE_FIELD, "warp:9", 422, "bad clock spec"),
        (Agency.ICE_FIELD, "manual", 409, "only its factor"),
        (Agency.LESC, "accelerated:60", 409, "manual clock"),
        (Agency.SIB, "accelerated:60", 409, "real clock"),
    ],
)
async def test_set_refuses_what_cannot_change_at_runtime(
    clocked: tuple[Scenario, ManualClock], agency: Agency, spec: str, status: int, reason: str
) -> None:
    s, _ = clocked
    async with httpx.AsyncClient() as client:
        r = await client.post(_url(s.fed, agency, "/v1/clock"), json={"spec": spec})
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]


async def _row_counts(host: ServiceHost) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with host.runtime.db.session() as session:
        for metadata in (*host.provider.metadatas, RuntimeBase.metadata):
            for table in metadata.sorted_tables:
                counts[table.name] = int(
                    await session.scalar(select(func.count()).select_from(table)) or 0
                )
    return counts


def _gallery_sizes(fed: Federation) -> dict[str, int]:
    sib: Any = fed.hosts[Agency.SIB].provider
    cjis: Any = fed.hosts[Agency.CJIS_IAFIS].provider
    ident: Any = fed.hosts[Agency.IDENT].provider
    return {
        "sib": sum(len(engine) for engine in sib.bureau.engines.values()),
        "cjis_iafis": len(cjis.master_file.engine),
        "ident": len(ident.gallery.engine),
    }


async def test_reset_empties_every_store_and_a_booking_after_it_works_end_to_end(
    federation: Federation,
) -> None:
    async with scenario_in(federation) as s:
        subject = s.subject()
        await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
        await s.in_iafis(subject, [("1201", 1825)])
        before = await s.final(await s.book(subject, CA))
        assert "IDR/IAR" in response_kinds(before)
        await s.detainers_for(before["tcn"], CA, expect=1)
        await s.quiet()
        assert all(_gallery_sizes(federation).values())

        async with httpx.AsyncClient() as client:
            for agency, host in federation.hosts.items():
                r = await client.post(f"{host.http_url}/v1/admin/reset")
                assert r.status_code == 200, r.text
                report = r.json()
                assert report["service"] == agency and report["seconds"] >= 0
                assert sum(report["deleted"].values()) > 0, f"{agency} had rows to delete"
                assert "clock_epoch" not in report["deleted"]

        for agency, host in federation.hosts.items():
            counts = await _row_counts(host)
            # The clock's anchor and the audit trail stay (test_audit.py proves the trail).
            kept = {"clock_epoch", "audit"}
            left = {table: n for table, n in counts.items() if n and table not in kept}
            assert left == {}, f"{agency} kept rows after reset"
            assert counts["audit"] >= 1, f"{agency} did not audit its reset"
            ok, reason = await host.readiness()
            assert ok, f"{agency} not ready after reset: {reason}"
        assert _gallery_sizes(federation) == {"sib": 0, "cjis_iafis": 0, "ident": 0}
        old = await s.client.get(f"/v1/bookings/{before['tcn']}")
        assert old.status_code == 404

        # The world again, and the same person: nobody on file knows them now.
        await s.setup()
        after = await s.final(await s.book(subject, CA))
    assert after["status"] == "answered"
    assert sorted(response_kinds(after)) == ["NO-MATCH-IDR", "SRE"]
    sre = next(r for r in after["responses"] if r["kind"] == "SRE")
    assert sre["body"]["identification"] == "N"


async def test_reset_leaves_a_manual_clock_where_it_stood(
    clocked: tuple[Scenario, ManualClock],
) -> None:
    s, clock = clocked
    clock.advance(timedelta(hours=5))
    async with httpx.AsyncClient() as client:
        r = await client.post(_url(s.fed, Agency.LESC, "/v1/admin/reset"))
    assert r.status_code == 200, r.text
    assert clock.now() == START + timedelta(hours=5)

    async def ready() -> bool:
        return (await s.fed.hosts[Agency.LESC].readiness())[0]

    await eventually(ready, what="LESC ready after reset")
