"""The audit trail over a running federation: one record per biometric search (IDENT's Search
and Identify, the IAFIS master-file search, the SIB's state-file search), refusals and record
reads audited with who asked, `GET /v1/audit` and `scfed audit` reading it, and neither a reset,
a snapshot load nor the database itself removing or changing a record."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from scfed.cjis_iafis.v1 import cjis_iafis_pb2, cjis_iafis_pb2_grpc
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from services.federation import Agency
from services.runtime.clock import RealClock
from services.runtime.envelope import MessageType, make_envelope
from services.runtime.journal import JournalKey
from services.runtime.models import Direction, Outcome
from tests.federation import Federation
from tests.integration.test_control_cli import _scfed, _urls
from tests.scenario import Scenario, scenario_in

CA = "CA0190000"
SEARCHES = {"match", "no_match"}


async def _audit(fed: Federation, agency: Agency, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[agency].http_url}/v1/audit", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


async def _journal_count(fed: Federation, agency: Agency, key: JournalKey) -> int:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[agency].http_url}/v1/journal-counts")
    return int(r.json().get(str(key), 0))


async def _book_some(s: Scenario) -> list[str]:
    """Four bookings: someone IDENT knows, someone with a record, a stranger, a repeat."""
    known, convicted, stranger = s.subject(), s.subject(), s.subject()
    await s.in_ident(known, "ENTRY_WITHOUT_INSPECTION")
    await s.in_iafis(convicted, [("1201", 1825)])
    tcns = [await s.book(person, CA) for person in (known, convicted, stranger, known)]
    for tcn in tcns:
        await s.final(tcn)
    await s.quiet()
    return tcns


async def test_every_search_over_a_run_is_one_audit_record(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        tcns = await _book_some(s)

    ident = [r for r in await _audit(federation, Agency.IDENT) if r["rpc"] == "Search"]
    ident_searches = await _journal_count(
        federation,
        Agency.IDENT,
        JournalKey(Direction.RECEIVED, MessageType.IDENT_SEARCH, Outcome.PROCESSED),
    )
    assert ident_searches > 0 and len(ident) == ident_searches
    assert {r["outcome"] for r in ident} <= SEARCHES and {r["purpose"] for r in ident} == {
        "booking"
    }
    assert {r["who"] for r in ident} == {Agency.CJIS_IAFIS.value}
    assert "match" in {r["outcome"] for r in ident}

    cars = [r for r in await _audit(federation, Agency.CJIS_IAFIS) if r["rpc"] == "SubmitCar"]
    car_searches = await _journal_count(
        federation,
        Agency.CJIS_IAFIS,
        JournalKey(Direction.RECEIVED, MessageType.CAR, Outcome.PROCESSED),
    )
    assert car_searches > 0 and len(cars) == car_searches
    assert {r["who"] for r in cars} == {Agency.SIB.value}

    sib = [r for r in await _audit(federation, Agency.SIB) if r["outcome"] in SEARCHES]
    assert sorted(r["tcn"] for r in sib) == sorted(tcns)
    assert {r["who"] for r in sib} == {f"lea:{CA}"}
    # The repeat booking of a known person matches the state file.
    assert Counter(r["outcome"] for r in sib)["match"] == 1


async def test_identify_is_audited_as_an_administrative_search(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        person = s.subject()
        await s.in_ident(person, "ENTRY_WITHOUT_INSPECTION")
        async with grpc.aio.insecure_channel(federation.addresses()[Agency.IDENT]) as channel:
            found = await ident_pb2_grpc.IdentStub(channel).Identify(
                ident_pb2.IdentifyRequest(tenprint=person.capture(), candidate_list_size=3)
            )
    (record,) = [r for r in await _audit(federation, Agency.IDENT) if r["rpc"] == "Identify"]
    assert record["purpose"] == "administrative"
    assert record["outcome"] == ("match" if found.match else "no_match")
    assert record["candidates"] == len(found.candidates) > 0
    assert record["who"].startswith("unauthenticated@")


async def test_refused_searches_are_audited_as_refused(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        envelope = make_envelope(
            clock=RealClock(),
            sender=Agency.CJIS_IAFIS,
            tot=MessageType.IDENT_SEARCH,
            tcr="CA-REFUSED-1",
            ori=CA,
        )
        async with grpc.aio.insecure_channel(federation.addresses()[Agency.IDENT]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                # No prints: IDENT refuses the search.
                await ident_pb2_grpc.IdentStub(channel).Search(
                    ident_pb2.IdentSearch(envelope=envelope)
                )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        body = s.subject().booking_body("ZZ0000000", "BK-REFUSED", ("2399",))
        r = await s.client.post("/v1/bookings", json=body)
        assert r.status_code == 422, r.text

    (search,) = await _audit(federation, Agency.IDENT, tcn="CA-REFUSED-1")
    assert search["outcome"] == "refused" and search["rpc"] == "Search"
    assert search["who"] == Agency.CJIS_IAFIS.value and "tenprint" in search["detail"]
    refusals = [r for r in await _audit(federation, Agency.SIB) if r["outcome"] == "refused"]
    assert [r["who"] for r in refusals] == ["lea:ZZ0000000"]


async def test_record_reads_are_audited_with_who_read_them(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        person = s.subject()
        await s.in_iafis(person, [("1201", 1825)])
        tcn = await s.book(person, CA)
        view = await s.final(tcn)
        await s.inbox(CA)
        assert (await s.client.get("/v1/bookings/NO-SUCH-TCN")).status_code == 404
        sre = next(r for r in view["responses"] if r["kind"] == "SRE")
        async with grpc.aio.insecure_channel(federation.addresses()[Agency.CJIS_IAFIS]) as ch:
            await cjis_iafis_pb2_grpc.CjisIafisStub(ch).GetCriminalHistory(
                cjis_iafis_pb2.GetCriminalHistoryRequest(fbi_number=sre["body"]["fbi_number"])
            )

    sib = await _audit(federation, Agency.SIB)
    reads = [r for r in sib if r["rpc"] == "GET /v1/bookings/{tcn}" and r["tcn"] == tcn]
    assert reads and {r["outcome"] for r in reads} == {"read"}
    assert {r["who"] for r in reads} == {"unauthenticated@127.0.0.1"}
    inbox = [r for r in sib if r["rpc"] == "GET /v1/agencies/{ori}/messages"]
    assert inbox and {r["who"] for r in inbox} == {f"lea:{CA}"}
    (missing,) = [r for r in sib if r["tcn"] == "NO-SUCH-TCN"]
    assert missing["outcome"] == "refused" and "NOT_FOUND" in missing["detail"]
    (history,) = [
        r for r in await _audit(federation, Agency.CJIS_IAFIS) if r["rpc"] == "GetCriminalHistory"
    ]
    assert history["outcome"] == "read" and history["who"].startswith("unauthenticated@")


async def test_reset_keeps_the_trail_and_records_itself(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        await s.final(await s.book(s.subject(), CA))
        await s.quiet()
    before = await _audit(federation, Agency.SIB, limit=1000)
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{federation.sib_url}/v1/admin/reset")
    assert r.status_code == 200 and "audit" not in r.json()["deleted"]
    after = await _audit(federation, Agency.SIB, limit=1000)
    assert after[: len(before)] == before
    (reset,) = after[len(before) :]
    assert (reset["outcome"], reset["purpose"]) == ("reset", "administrative")
    assert reset["who"] == "unauthenticated@127.0.0.1"

    # Nor does the database let anyone change or delete a record.
    for statement in ("UPDATE audit SET who = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(sa_exc.DBAPIError, match="cannot be changed or deleted"):
            async with federation.hosts[Agency.SIB].runtime.db.session() as session:
                await session.execute(text(statement))
    assert await _audit(federation, Agency.SIB, limit=1000) == after


async def test_a_loaded_snapshot_leaves_the_trail_as_it_was(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        await s.final(await s.book(s.subject(), CA))
        await s.quiet()
        async with httpx.AsyncClient() as client:
            saved = await client.get(f"{federation.sib_url}/v1/admin/snapshot")
            assert "audit" not in json.loads(saved.content)["tables"]
            before = await _audit(federation, Agency.SIB, limit=1000)
            r = await client.put(f"{federation.sib_url}/v1/admin/snapshot", content=saved.content)
            assert r.status_code == 200, r.text
    assert await _audit(federation, Agency.SIB, limit=1000) == before


async def test_the_audit_route_filters_by_tcn_and_time_and_bounds_its_limit(
    federation: Federation,
) -> None:
    async with scenario_in(federation) as s:
        first = await s.book(s.subject(), CA)
        await s.book(s.subject(), CA)
    everything = await _audit(federation, Agency.SIB)
    assert len(everything) >= 2
    assert [r["tcn"] for r in await _audit(federation, Agency.SIB, tcn=first)] == [first]
    assert len(await _audit(federation, Agency.SIB, limit=1)) == 1
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await _audit(federation, Agency.SIB, since=future) == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await _audit(federation, Agency.SIB, since=past) == everything
    async with httpx.AsyncClient() as client:
        for params in ({"limit": 0}, {"limit": 1001}, {"since": "yesterday"}, {"tcn": ""}):
            r = await client.get(f"{federation.sib_url}/v1/audit", params=params)
            assert r.status_code == 422, (params, r.text)
        # The trail is read-only: no method but GET on the route.
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = await client.request(method, f"{federation.sib_url}/v1/audit")
            assert r.status_code == 405, (method, r.text)


async def test_scfed_audit_reads_every_service_by_tcn(federation: Federation) -> None:
    async with scenario_in(federation) as s:
        tcn = await s.book(s.subject(), CA)
        await s.final(tcn)
        await s.quiet()
    code, out, err = await _scfed("audit", "--tcn", tcn, *_urls(federation), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["refused"] == {} and result["unreachable"] == {}
    searches = {(r["service"], r["rpc"]) for r in result["records"] if r["outcome"] in SEARCHES}
    assert ("sib", "POST /v1/bookings") in searches
    assert ("cjis_iafis", "SubmitCar") in searches
    assert {r["tcn"] for r in result["records"]} == {tcn}

    code, out, err = await _scfed("audit", "--since", "soon", *_urls(federation))
    assert code == 1 and "422" in err
