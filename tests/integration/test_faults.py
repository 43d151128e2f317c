"""Fault rules on a running federation: both edges manage them, each action does what it says
to real deliveries, the journal shows every injection, and the store-and-forward core still
answers every booking exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from scfed.common.v1 import common_pb2 as pb
from scfed.common.v1 import common_pb2_grpc as pb_grpc
from services.cli.trace import trace_online
from services.federation import Agency
from tests.federation import Federation
from tests.scenario import Scenario, scenario_in
from tests.support import eventually

CA = "CA0190000"


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation, with an HTTP client for the SIB."""
    async with scenario_in(federation) as s:
        yield s


async def _add(fed: Federation, agency: Agency, **rule: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{fed.hosts[agency].http_url}/v1/faults", json=rule)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _clear(fed: Federation, agency: Agency) -> int:
    async with httpx.AsyncClient() as client:
        r = await client.delete(f"{fed.hosts[agency].http_url}/v1/faults")
    assert r.status_code == 200, r.text
    return int(r.json()["cleared"])


async def _journal(fed: Federation, agency: Agency, tcn: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[agency].http_url}/v1/journal/{tcn}")
    assert r.status_code == 200, r.text
    return list(r.json())


async def _level_1_booking(scenario: Scenario) -> str:
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    await scenario.in_iafis(subject, [("1201", 1825)])
    return await scenario.book(subject, CA, ("2399",))


async def test_the_http_edge_adds_lists_and_clears_rules(federation: Federation) -> None:
    url = f"{federation.hosts[Agency.IDENT].http_url}/v1/faults"
    async with httpx.AsyncClient() as client:
        added = await client.post(
            url, json={"action": "latency", "latency_ms": 5, "method": "Search", "count": 3}
        )
        assert added.status_code == 201, added.text
        rule = added.json()
        assert rule["id"] == "f1" and rule["remaining"] == 3 and rule["injected"] == 0
        listed = (await client.get(url)).json()["rules"]
        assert [r["id"] for r in listed] == ["f1"]

        refused = await client.post(url, json={"action": "partition"})
        assert refused.status_code == 422 and "peer" in refused.json()["detail"]
        refused = await client.post(url, json={"action": "status", "code": "x" * 5000})
        assert refused.status_code == 422 and len(refused.text) < 2000

        missing = await client.delete(f"{url}/f99")
        assert missing.status_code == 404 and "f99" in missing.json()["detail"]
        assert (await client.delete(f"{url}/f1")).json() == {"cleared": 1}
        assert (await client.get(url)).json() == {"rules": []}


async def test_the_grpc_faults_service_adds_lists_and_clears_rules(
    federation: Federation,
) -> None:
    async with grpc.aio.insecure_channel(federation.addresses()[Agency.LESC]) as channel:
        stub = pb_grpc.FaultsStub(channel)
        added = await stub.AddFault(
            pb.AddFaultRequest(rule=pb.FaultRule(action="status", code="internal", count=2))
        )
        assert added.rule.id == "f1" and added.rule.code == "INTERNAL"
        assert [r.id for r in (await stub.ListFaults(pb.ListFaultsRequest())).rules] == ["f1"]
        for request, code in (
            (pb.AddFaultRequest(), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.AddFaultRequest(rule=pb.FaultRule(action="latency")),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.AddFault(request)
            assert caught.value.code() == code and caught.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ClearFaults(pb.ClearFaultsRequest(id="f7"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        # A rule matching every call still leaves the Faults service answering.
        assert (await stub.ClearFaults(pb.ClearFaultsRequest())).cleared == 1


async def test_a_refusing_lesc_is_retried_and_every_refusal_is_journaled(
    scenario: Scenario,
) -> None:
    fed = scenario.fed
    await _add(fed, Agency.LESC, action="status", message_type="IAQ", count=2, details="busy")
    tcn = await _level_1_booking(scenario)
    view = await scenario.final(tcn)
    assert view["status"] == "answered"
    await scenario.detainers_for(tcn, CA, expect=1)
    faults = [e for e in await _journal(fed, Agency.LESC, tcn) if e["outcome"] == "fault"]
    assert len(faults) == 2 and all("status UNAVAILABLE (busy)" in e["detail"] for e in faults)
    assert {e["direction"] for e in faults} == {"received"}
    sent = [e for e in await _journal(fed, Agency.CJIS_IAFIS, tcn) if e["tot"] == "IAQ"]
    assert [e["outcome"] for e in sent] == ["delivered"]
    assert "after 3 attempt(s)" in sent[0]["detail"]
    await scenario.quiet()
    entries, _ = await trace_online(tcn, fed.addresses())
    assert sum(e["outcome"] == "fault" for e in entries) == 2


async def test_a_lost_acknowledgement_is_retried_and_processed_once(scenario: Scenario) -> None:
    fed = scenario.fed
    await _add(fed, Agency.LESC, action="drop_ack", message_type="IAQ", count=1)
    await _add(fed, Agency.ICE_FIELD, action="drop_ack", count=1)
    tcn = await _level_1_booking(scenario)
    await scenario.final(tcn)
    await scenario.quiet()
    lesc = [e["outcome"] for e in await _journal(fed, Agency.LESC, tcn) if e["tot"] == "IAQ"]
    assert sorted(lesc) == ["duplicate", "fault", "processed"]
    # One IAR reached CJIS, one detainer reached the LEA, despite the lost acknowledgements.
    cjis = await _journal(fed, Agency.CJIS_IAFIS, tcn)
    assert [e["outcome"] for e in cjis if e["tot"] == "IAR" and e["direction"] == "received"] == [
        "processed"
    ]
    detainers = await scenario.detainers_for(tcn, CA, expect=1)
    assert len(detainers) == 1


async def test_a_partition_holds_messages_until_it_heals(scenario: Scenario) -> None:
    fed = scenario.fed
    await _add(fed, Agency.IDENT, action="partition", peer="cjis_iafis")
    subject = scenario.subject()
    tcn = await scenario.book(subject, CA, ("5404",))

    async def cut_off() -> bool:
        entries = await _journal(fed, Agency.IDENT, tcn)
        return any(e["outcome"] == "fault" for e in entries)

    await eventually(cut_off, what="IDENT refusing CJIS's search")
    view = (await scenario.client.get(f"/v1/bookings/{tcn}")).json()
    assert "IDR" not in [r["kind"] for r in view["responses"]]
    assert await _clear(fed, Agency.IDENT) == 1
    view = await scenario.final(tcn)
    assert view["status"] == "answered"
    ident = await _journal(fed, Agency.IDENT, tcn)
    assert [e["outcome"] for e in ident if e["outcome"] == "processed"] == ["processed"]


async def test_a_sending_side_refusal_dead_letters_a_permanent_status(
    scenario: Scenario,
) -> None:
    fed = scenario.fed
    await _add(
        fed,
        Agency.CJIS_IAFIS,
        action="status",
        side="send",
        message_type="SRE",
        code="PERMISSION_DENIED",
        count=1,
    )
    tcn = await scenario.book(scenario.subject(), CA, ("5404",))
    await scenario.quiet()
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[Agency.CJIS_IAFIS].http_url}/v1/outbox/dead")
    dead = [row for row in r.json() if row["tcn"] == tcn]
    assert [row["tot"] for row in dead] == ["SRE"]
    assert "PERMISSION_DENIED" in dead[0]["last_error"] and "fault rule f1" in dead[0]["last_error"]
    sent = [e for e in await _journal(fed, Agency.CJIS_IAFIS, tcn) if e["tot"] == "SRE"]
    assert sorted(e["outcome"] for e in sent) == ["dead", "fault"]


async def test_slow_db_and_latency_delay_the_calls_they_match(federation: Federation) -> None:
    fed = federation
    loop = asyncio.get_running_loop()
    await _add(fed, Agency.SIB, action="slow_db", latency_ms=300)
    async with httpx.AsyncClient(base_url=fed.sib_url) as client:
        began = loop.time()
        assert (await client.get("/v1/bookings-summary")).status_code == 200
        assert loop.time() - began >= 0.3
    assert await _clear(fed, Agency.SIB) == 1
    await _add(fed, Agency.SIB, action="latency", latency_ms=300, method="GetJournal")
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.SIB]) as channel:
        stub = pb_grpc.JournalStub(channel)
        began = loop.time()
        await stub.GetJournal(pb.JournalQuery(tcn="CA0190000-NONE"))
        assert loop.time() - began >= 0.3
    entries = await _journal(fed, Agency.SIB, "CA0190000-NONE")
    assert [(e["outcome"], e["tot"]) for e in entries] == [("fault", "GetJournal")]
    assert "f2 on GetJournal: 300 ms added" in entries[0]["detail"]


async def test_reset_clears_the_fault_rules(federation: Federation) -> None:
    await _add(federation, Agency.LESC, action="drop")
    async with httpx.AsyncClient() as client:
        base = federation.hosts[Agency.LESC].http_url
        report = (await client.post(f"{base}/v1/admin/reset")).json()
        assert report["faults_cleared"] == 1
        assert (await client.get(f"{base}/v1/faults")).json() == {"rules": []}
