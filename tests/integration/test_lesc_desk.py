"""LESC around the clock: automated, analyst and late IARs in stepped agency time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.cli.report import review_programs
from services.federation import Agency
from services.runtime.clock import ManualClock
from tests.federation import DatabaseChoice, running_federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually, response_kinds

CA = "CA0190000"


@pytest.fixture
async def desk(db: DatabaseChoice) -> AsyncIterator[tuple[Scenario, ManualClock]]:
    """A federation whose LESC runs on a manual clock with one night analyst and a 30-minute
    target."""
    clock = ManualClock(datetime(2009, 10, 1, 23, 0, tzinfo=UTC))
    lesc = {
        "clock": clock,
        "shifts": "06:00=3,22:00=1",
        "analyst_minutes": 20,
        "vtc_minutes": 45,
        "iar_target_minutes": 30,
    }
    async with running_federation(db, lesc=lesc) as fed, scenario_in(fed) as s:
        yield s, clock


async def _case(s: Scenario, tcn: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal found
        async with httpx.AsyncClient() as client:
            url = f"{s.fed.hosts[Agency.LESC].http_url}/v1/cases"
            cases = (await client.get(url, params={"tcn": tcn})).json()
        found = cases[0] if cases else {}
        return bool(found) and found["state"] == state

    await eventually(reached, what=f"the LESC case of {tcn} to be {state}")
    return found


async def _kinds(s: Scenario, tcn: str) -> list[str]:
    return response_kinds((await s.client.get(f"/v1/bookings/{tcn}")).json())


async def test_automated_determination_answers_at_once(desk: tuple[Scenario, ManualClock]) -> None:
    s, _ = desk
    subject = s.subject()
    await s.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    tcn = await s.book(subject, CA)
    case = await _case(s, tcn, "answered")
    assert case["route"] == "automated" and case["late"] is False
    await s.final(tcn)
    assert "IDR/IAR" in await _kinds(s, tcn)


async def test_analyst_cases_wait_for_an_analyst_and_late_answers_still_go(
    desk: tuple[Scenario, ManualClock],
) -> None:
    s, clock = desk
    booked = []
    for _ in range(2):
        subject = s.subject()
        await s.in_ident(subject, "LAWFUL_PERMANENT_RESIDENT")
        booked.append(await s.book(subject, CA, ("0901",)))  # Level 1: homicide
    await s.quiet()
    # The two IAQs race through CJIS and IDENT: the one that reached LESC first is worked
    # first, by the one analyst of the night shift; the other waits.
    states: dict[str, dict[str, Any]] = {}

    async def one_working_one_queued() -> bool:
        async with httpx.AsyncClient() as client:
            url = f"{s.fed.hosts[Agency.LESC].http_url}/v1/cases"
            for tcn in booked:
                found = (await client.get(url, params={"tcn": tcn})).json()
                states[tcn] = found[0] if found else {}
        return sorted(c.get("state", "") for c in states.values()) == ["in_work", "queued"]

    await eventually(one_working_one_queued, what="one case in work and one queued")
    tcns = sorted(booked, key=lambda t: states[t]["state"])  # in_work before queued
    assert all(states[t]["route"] == "analyst" for t in tcns)
    assert "IDR/IAR" not in await _kinds(s, tcns[0])

    clock.advance(timedelta(minutes=20))
    first = await _case(s, tcns[0], "answered")
    assert first["late"] is False
    await _case(s, tcns[1], "in_work")
    clock.advance(timedelta(minutes=20))
    second = await _case(s, tcns[1], "answered")
    # Received at 23:00, target 30 minutes, answered at 23:40: late, and delivered anyway.
    assert second["late"] is True
    assert datetime.fromisoformat(second["answered_at"]) == datetime(
        2009, 10, 1, 23, 40, tzinfo=UTC
    )
    view = await s.final(tcns[1])
    assert "IDR/IAR" in [r["kind"] for r in view["responses"]]
    # Goal 3.3 reviews LESC on its Level 1 answers: one of two was late.
    async with httpx.AsyncClient() as client:
        counts = (await client.get(f"{s.fed.hosts[Agency.LESC].http_url}/v1/measures")).json()
    assert (counts["level_1_iar"], counts["level_1_iar_late"], counts["iar_late"]) == (2, 1, 1)
    (lesc,) = [r for r in review_programs({"lesc": counts}) if r["service"] == "lesc"]
    assert (lesc["value_pct"], lesc["met"]) == (50.0, False)


async def test_a_finished_case_frees_exactly_one_analyst(
    desk: tuple[Scenario, ManualClock],
) -> None:
    s, clock = desk
    booked = []
    for _ in range(3):
        subject = s.subject()
        await s.in_ident(subject, "LAWFUL_PERMANENT_RESIDENT")
        booked.append(await s.book(subject, CA))
    await s.quiet()

    async def states() -> list[str]:
        async with httpx.AsyncClient() as client:
            url = f"{s.fed.hosts[Agency.LESC].http_url}/v1/cases"
            found = [(await client.get(url, params={"tcn": t})).json() for t in booked]
        return sorted(f[0]["state"] if f else "" for f in found)

    async def counted(expected: list[str]) -> bool:
        return await states() == expected

    await eventually(lambda: counted(["in_work", "queued", "queued"]), what="one in work")
    clock.advance(timedelta(minutes=20))
    await eventually(lambda: counted(["answered", "in_work", "queued"]), what="the next one")
    assert await states() == ["answered", "in_work", "queued"]  # one analyst on the night shift
