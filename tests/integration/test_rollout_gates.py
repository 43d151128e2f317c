"""The two interoperability gates on a running federation: a jurisdiction activated by its
rollout phase from a day, and a state's MOA; CJIS's journal names the gate that stopped the
IDENT search."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from typer.testing import CliRunner

from scfed.sib.v1 import sib_pb2, sib_pb2_grpc
from services.cli.main import app
from services.federation import Agency
from tests.federation import Federation
from tests.scenario import Scenario, scenario_in
from tests.support import response_kinds

# Registered for these tests: a California jurisdiction that phase 2 activates on 2010-03-01.
PHASED = "CA0990000"
AZ = "AZ0070000"


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered, plus one jurisdiction whose activation is dated."""
    async with scenario_in(federation) as s:
        async with grpc.aio.insecure_channel(federation.addresses()[Agency.SIB]) as channel:
            sib = sib_pb2_grpc.StateIdentificationBureauStub(channel)
            await sib.RegisterAgency(
                sib_pb2.Agency(
                    ori=PHASED,
                    name="Phased County Sheriff",
                    activated=True,
                    activated_on="20100301",
                    rollout_phase=2,
                    criminal_alien_share=0.1,
                )
            )
        yield s


async def _book(scenario: Scenario, ori: str, doa: str) -> dict[str, Any]:
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    body = subject.booking_body(ori, f"RO-{subject.name[-6:]}-{doa}", ("2399",), doa=doa)
    r = await scenario.client.post("/v1/bookings", json=body)
    assert r.status_code == 202, r.text
    return await scenario.final(str(r.json()["tcn"]))


async def _journal(fed: Federation, service: str, tcn: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[service].http_url}/v1/journal/{tcn}")
        assert r.status_code == 200, r.text
        return list(r.json())


async def _cjis_detail(fed: Federation, tcn: str) -> str:
    received = [e for e in await _journal(fed, Agency.CJIS_IAFIS, tcn) if e["tot"] == "CAR"]
    assert received, f"CJIS journaled no CAR for {tcn}"
    return str(received[0]["detail"])


async def test_a_booking_before_its_jurisdictions_activation_gets_no_ident_search(
    scenario: Scenario,
) -> None:
    view = await _book(scenario, PHASED, "20091015")
    assert view["expects_idr"] is False and response_kinds(view) == ["SRE"]
    assert await _journal(scenario.fed, Agency.IDENT, view["tcn"]) == []
    detail = await _cjis_detail(scenario.fed, view["tcn"])
    assert "interoperability search skipped" in detail
    assert f"jurisdiction ORI {PHASED} not activated until 2010-03-01" in detail
    assert "MOA" not in detail
    # The SIB's journal of the booking says so too.
    taken = [
        e for e in await _journal(scenario.fed, Agency.SIB, view["tcn"]) if e["tot"] == "BOOKING"
    ]
    assert "interoperability=no (jurisdiction not activated until 2010-03-01)" in taken[0]["detail"]


async def test_a_booking_on_or_after_the_activation_day_is_searched(scenario: Scenario) -> None:
    view = await _book(scenario, PHASED, "20100301")
    assert view["expects_idr"] is True and "IDR/IAR" in response_kinds(view)
    assert "+IDENT" in await _cjis_detail(scenario.fed, view["tcn"])


async def test_a_booking_in_a_state_without_an_active_moa_names_the_moa_gate(
    scenario: Scenario,
) -> None:
    view = await _book(scenario, AZ, "20091015")
    assert view["expects_idr"] is False and response_kinds(view) == ["SRE"]
    detail = await _cjis_detail(scenario.fed, view["tcn"])
    assert "interoperability search skipped: MOA not active for state AZ" in detail
    assert "jurisdiction" not in detail


async def test_registering_an_agency_with_a_malformed_activation_day_is_refused(
    scenario: Scenario,
) -> None:
    async with grpc.aio.insecure_channel(scenario.fed.addresses()[Agency.SIB]) as channel:
        sib = sib_pb2_grpc.StateIdentificationBureauStub(channel)
        for agency, field in (
            (sib_pb2.Agency(ori=PHASED, activated=True, activated_on="2010-03-01"), "activated_on"),
            (sib_pb2.Agency(ori=PHASED, activated=True, criminal_alien_share=1.5), "share"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await sib.RegisterAgency(agency)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (refused.value.details() or "")


async def test_the_report_shows_each_phase_with_bookings_with_and_without_the_search(
    scenario: Scenario,
) -> None:
    await _book(scenario, PHASED, "20091015")
    await _book(scenario, PHASED, "20100301")
    await _book(scenario, AZ, "20091015")
    urls = [f"{name}={host.http_url}" for name, host in scenario.fed.hosts.items()]
    args = ["report", "--json", *(a for url in urls for a in ("--url", url))]
    # The command runs its own event loop, so it runs in a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    phases = {row["phase"]: row for row in json.loads(result.stdout)["rollout"]}
    assert sorted(phases) == [0, 1, 2, 3]
    second = phases[2]
    assert (second["jurisdictions"], second["share_pct"], second["target_pct"]) == (1, 10.0, 60)
    assert second["first_activation"] == second["last_activation"] == "2010-03-01"
    assert (second["bookings_with_ident_search"], second["bookings_without_ident_search"]) == (
        1,
        1,
    )
    # The fixed world's own agencies were registered without a phase.
    assert phases[0]["bookings"] == 1 and phases[0]["bookings_without_ident_search"] == 1
    wide = CliRunner(env={"COLUMNS": "250"})
    text = await asyncio.to_thread(wide.invoke, app, args[:1] + args[2:])
    assert text.exit_code == 0, text.output
    assert "Coverage by rollout phase" in text.stdout and "2010-03-01" in text.stdout
