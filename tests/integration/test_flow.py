"""The MOA message flow through five real services on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from sqlalchemy import select

from scfed.common.v1 import common_pb2
from scfed.sib.v1 import sib_pb2, sib_pb2_grpc
from services.cli.trace import trace_online
from services.federation import Agency
from services.runtime.models import OutboxMessage
from services.world.seeding import register_jurisdictions, seed_world
from services.world.world import AGENCIES, STATES, booking_payload, build_world
from tests.federation import POSTGRES_URL, DatabaseChoice, Federation, make_host
from tests.scenario import Scenario, scenario_in
from tests.support import eventually, response_kinds

CA, KERN, TX, AZ, NM = "CA0190000", "CA0150000", "TX0570000", "AZ0070000", "NM0010000"


@pytest.fixture
async def scenario(federation: Federation) -> AsyncIterator[Scenario]:
    """The fixed world registered in a fresh federation, with an HTTP client for the SIB."""
    async with scenario_in(federation) as s:
        yield s


def _response(view: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [r for r in view["responses"] if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {response_kinds(view)}"
    return dict(found[0])


async def _journal(fed: Federation, service: str, tcn: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{fed.hosts[service].http_url}/v1/journal/{tcn}")
        return list(r.json())


async def test_match_gets_sre_joint_idr_iar_and_a_level_1_detainer(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    await scenario.in_iafis(subject, [("1201", 1825)])
    tcn = await scenario.book(subject, CA, ("2399",))
    view = await scenario.final(tcn)

    assert view["transaction"] == "CAR" and view["status"] == "answered"
    sre = _response(view, "SRE")["body"]
    assert sre["identification"] == "I" and sre["fbi_number"] == subject.fbi_number
    joint = _response(view, "IDR/IAR")
    assert joint["relayed"] is True
    idr, iar = joint["body"]["joint"]["idr"], joint["body"]["joint"]["iar"]
    assert idr["match"] is True and idr["fin"] == subject.fin
    assert (
        iar["removable"] is True and iar["status"] == "IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION"
    )
    assert iar["prior_conviction_level"] == "OFFENSE_LEVEL_1"
    assert iar["current_charge_level"] == "OFFENSE_LEVEL_2"
    assert iar["priority"] == 1

    detainers = await scenario.detainers_for(tcn, CA, expect=1)
    detainer = detainers[0]["body"]["detainer"]
    assert detainer["basis"] == "DETAINER_BASIS_PRIOR_LEVEL_1"
    assert detainer["field_office"] == "CAICE0100" and detainer["max_hold_hours"] == 48
    inbox_kinds = [m["kind"] for m in await scenario.inbox(CA) if m["tcn"] == tcn]
    assert inbox_kinds.count("SRE") == 1 and "IDR/IAR" in inbox_kinds and "I-247" in inbox_kinds


async def test_trace_shows_every_hop_of_a_match_in_order(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    tcn = await scenario.book(subject, CA, ("1201",))
    await scenario.final(tcn)
    await scenario.detainers_for(tcn, CA, expect=1)
    await scenario.quiet()
    entries, left_out = await trace_online(tcn, scenario.fed.addresses())
    assert left_out == {}
    received = [(e["service"], e["tot"]) for e in entries if e["direction"] == "received"]
    causal_chain = [
        ("sib", "BOOKING"),
        ("cjis_iafis", "CAR"),
        ("ident", "IDENT-SEARCH"),
        ("cjis_iafis", "IDR"),
        ("lesc", "IAQ"),
        ("cjis_iafis", "IAR"),
        ("sib", "IDR/IAR"),
    ]
    assert [p for p in received if p in causal_chain] == causal_chain
    assert received.index(("cjis_iafis", "CAR")) < received.index(("sib", "SRE"))
    assert received.index(("lesc", "IAQ")) < received.index(("ice_field", "IAR-COPY"))
    assert received.index(("ice_field", "IAR-COPY")) < received.index(("sib", "I-247"))
    assert ("cjis_iafis", "IAQ-ACK") in received
    # Every message is written by its sender before its receiver processes it.
    by_id: dict[tuple[str, str], str] = {}
    for e in entries:
        by_id.setdefault((e["tot"], e["direction"]), e["at"])
    for tot in ("CAR", "IDENT-SEARCH", "IDR", "IAQ", "IAR", "IAR-COPY", "I-247"):
        assert by_id[(tot, "sent")] <= by_id[(tot, "received")], tot
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


async def test_unknown_person_gets_a_no_match_idr_and_no_iaq(scenario: Scenario) -> None:
    tcn = await scenario.book(scenario.subject(), CA)
    view = await scenario.final(tcn)
    assert _response(view, "SRE")["body"]["identification"] == "N"
    no_match = _response(view, "NO-MATCH-IDR")
    assert no_match["relayed"] is True and no_match["body"]["no_match"]["idr"] == {}
    assert await _journal(scenario.fed, Agency.LESC, tcn) == []


async def test_naturalized_citizen_matches_but_is_not_removable(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "NATURALIZED_CITIZEN")
    tcn = await scenario.book(subject, CA, ("0901",))
    view = await scenario.final(tcn)
    iar = _response(view, "IDR/IAR")["body"]["joint"]["iar"]
    assert iar["status"] == "IMMIGRATION_STATUS_NATURALIZED_CITIZEN"
    assert iar.get("removable", False) is False and iar.get("priority", 0) == 0
    await scenario.quiet()
    assert [m for m in await scenario.inbox(CA) if m["kind"] == "I-247" and m["tcn"] == tcn] == []


async def test_nff_state_sends_a_cpi_for_a_subsequent_arrest(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    first = await scenario.final(await scenario.book(subject, TX, ("2399",)))
    second = await scenario.final(await scenario.book(subject, TX, ("2605",)))

    assert first["transaction"] == "CAR" and second["transaction"] == "CPI"
    assert first["sid"] == second["sid"]
    fbi = _response(first, "SRE")["body"]["fbi_number"]
    sre = _response(second, "SRE")["body"]
    assert sre["identification"] == "I" and sre["fbi_number"] == fbi
    assert len(sre["history"]["cycles"]) == 2
    # The CPI carries no prints; IDENT was searched with the prints on file and matched.
    assert _response(second, "IDR/IAR")["body"]["joint"]["idr"]["fin"] == subject.fin


async def test_cpi_waits_for_the_fbi_number_of_the_first_arrest(
    scenario: Scenario, db: DatabaseChoice
) -> None:
    fed = scenario.fed
    await fed.hosts[Agency.CJIS_IAFIS].stop()
    subject = scenario.subject()
    first_tcn = await scenario.book(subject, TX)
    second_tcn = await scenario.book(subject, TX)
    parked = (await scenario.client.get(f"/v1/bookings/{second_tcn}")).json()
    assert parked["status"] == "awaiting_fbi_number" and parked["transaction"] == "CPI"

    await fed.restart(Agency.CJIS_IAFIS, db)
    first, second = await scenario.final(first_tcn), await scenario.final(second_tcn)
    assert first["status"] == second["status"] == "answered"
    assert (
        _response(first, "SRE")["body"]["fbi_number"]
        == _response(second, "SRE")["body"]["fbi_number"]
    )


async def test_suspended_moa_gets_criminal_history_processing_only(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "ENTRY_WITHOUT_INSPECTION")
    view = await scenario.final(await scenario.book(subject, AZ, ("1201",)))
    assert view["expects_idr"] is False and response_kinds(view) == ["SRE"]
    assert await _journal(scenario.fed, Agency.IDENT, view["tcn"]) == []


async def test_moa_suspended_and_resumed_at_runtime_switches_ident_searches(
    scenario: Scenario,
) -> None:
    import grpc

    from scfed.sib.v1 import sib_pb2, sib_pb2_grpc

    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    async with grpc.aio.insecure_channel(scenario.fed.addresses()["sib"]) as channel:
        sib = sib_pb2_grpc.StateIdentificationBureauStub(channel)
        state = await sib.SetMoaStatus(
            sib_pb2.SetMoaStatusRequest(state="CA", status=sib_pb2.MOA_STATUS_SUSPENDED)
        )
        assert state.moa_status == sib_pb2.MOA_STATUS_SUSPENDED
        suspended = await scenario.final(await scenario.book(subject, CA))
        notice = await sib.SetMoaStatus(
            sib_pb2.SetMoaStatusRequest(state="CA", status=sib_pb2.MOA_STATUS_TERMINATION_NOTICED)
        )
        assert notice.HasField("termination_effective_at")
        noticed = await scenario.final(await scenario.book(subject, CA))
    assert suspended["expects_idr"] is False and response_kinds(suspended) == ["SRE"]
    # Termination takes effect 30 days after notice: until then the MOA is in effect.
    assert noticed["expects_idr"] is True and "IDR/IAR" in response_kinds(noticed)


async def test_jurisdiction_not_activated_gets_no_ident_search(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    view = await scenario.final(await scenario.book(subject, KERN))
    assert view["expects_idr"] is False and response_kinds(view) == ["SRE"]


async def test_sib_without_relay_capability_keeps_the_idr_but_relays_the_detainer(
    scenario: Scenario,
) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "FINAL_ORDER_OF_REMOVAL")
    tcn = await scenario.book(subject, NM, ("1201",))
    view = await scenario.final(tcn)
    joint = _response(view, "IDR/IAR")
    assert joint["relayed"] is False
    detainers = await scenario.detainers_for(tcn, NM, expect=1)
    assert detainers[0]["body"]["detainer"]["basis"] == "DETAINER_BASIS_LEVEL_1"
    inbox_kinds = [m["kind"] for m in await scenario.inbox(NM) if m["tcn"] == tcn]
    assert "IDR/IAR" not in inbox_kinds and "SRE" in inbox_kinds and "I-247" in inbox_kinds


async def test_decisions_do_not_depend_on_descriptors(scenario: Scenario) -> None:
    subject = scenario.subject()
    await scenario.in_ident(subject, "LAWFUL_PERMANENT_RESIDENT")
    await scenario.in_iafis(subject, [("2299", 400)])
    outcomes = []
    for descriptors in (
        {"nam": "GARCIA,JUAN", "sex": "M", "dob": "19800101", "pob": "MX"},
        {"nam": "SMITH,JOHN", "sex": "F", "dob": "19700505", "pob": "TX"},
    ):
        tcn = await scenario.book(subject, CA, ("2605",), descriptors=descriptors)
        iar = _response(await scenario.final(tcn), "IDR/IAR")["body"]["joint"]["iar"]
        detainer = (await scenario.detainers_for(tcn, CA, expect=1))[0]["body"]["detainer"]
        outcomes.append(
            (
                iar["status"],
                iar["removable"],
                iar["prior_conviction_level"],
                iar["current_charge_level"],
                iar["priority"],
                detainer["basis"],
                detainer["level"],
            )
        )
    assert outcomes[0] == outcomes[1]


async def test_message_sent_while_receiver_is_down_is_processed_once_after_restart(
    scenario: Scenario, db: DatabaseChoice
) -> None:
    fed = scenario.fed
    await fed.hosts[Agency.LESC].stop()
    subject = scenario.subject()
    await scenario.in_ident(subject, "VISA_OVERSTAY")
    tcn = await scenario.book(subject, CA)

    async def iaq_retrying() -> bool:
        async with fed.hosts[Agency.CJIS_IAFIS].runtime.db.session() as session:
            attempts = await session.scalar(
                select(OutboxMessage.attempts).where(
                    OutboxMessage.tot == "IAQ", OutboxMessage.tcn == tcn
                )
            )
        return (attempts or 0) >= 2

    await eventually(iaq_retrying, what="the IAQ to be retried while LESC is down")
    pending = (await scenario.client.get(f"/v1/bookings/{tcn}")).json()
    assert pending["status"] == "submitted" and "IDR/IAR" not in response_kinds(pending)

    await fed.restart(Agency.LESC, db)
    view = await scenario.final(tcn)
    assert "IDR/IAR" in response_kinds(view)
    await scenario.quiet()
    lesc = [e for e in await _journal(fed, Agency.LESC, tcn) if e["direction"] == "received"]
    assert [(e["tot"], e["outcome"]) for e in lesc] == [("IAQ", "processed")]


async def test_undeliverable_car_is_dead_lettered_and_the_lea_gets_an_errt(
    db: DatabaseChoice,
) -> None:
    sib = make_host(Agency.SIB, db, outbox_max_attempts=2, cjis_iafis_addr="127.0.0.1:9")
    fed = Federation(hosts={Agency.SIB: sib})
    await sib.start()
    try:
        async with httpx.AsyncClient(base_url=sib.http_url) as client:
            s = Scenario(fed, client)
            async with grpc.aio.insecure_channel(sib.grpc_address) as channel:
                stub = sib_pb2_grpc.StateIdentificationBureauStub(channel)
                await register_jurisdictions(stub, STATES, AGENCIES)
            tcn = await s.book(s.subject(), CA)
            view = await s.final(tcn)
            assert view["status"] == "refused" and "CJIS did not accept the CAR" in view["error"]
            errt = _response(view, "ERRT")
            assert errt["relayed"] is True and errt["body"]["errt"]["code"] == "DELIVERY_FAILED"
            dead = (await client.get("/v1/outbox/dead")).json()
            assert [(d["tot"], d["tcn"]) for d in dead] == [("CAR", tcn)]
            assert dead[0]["attempts"] == 2 and "UNAVAILABLE" in dead[0]["last_error"]
    finally:
        await sib.stop()


async def test_a_synthetic_booking_stream_is_answered_in_full(federation: Federation) -> None:
    world = build_world(3, 40, rebook_gap=4)
    await seed_world(world, federation.addresses())
    async with httpx.AsyncClient(base_url=federation.sib_url, timeout=30) as client:
        for booking in world.bookings:
            r = await client.post("/v1/bookings", json=booking_payload(world, booking))
            assert r.status_code == 202, r.text
        s = Scenario(federation, client)
        await s.quiet()

        async def all_final() -> bool:
            summary = (await client.get("/v1/bookings-summary")).json()
            return bool(summary["by_status"].get("answered", 0) == len(world.bookings))

        await eventually(all_final, what="every booking answered")
        summary = (await client.get("/v1/bookings-summary")).json()
    assert summary["by_transaction"]["CPI"] >= 1
    assert summary["relayed_to_lea"] > 0 and summary["not_relayed"] > 0
    assert sum(summary["detainers"].values()) > 0


@pytest.mark.postgres
async def test_a_cpi_booked_while_the_sre_is_being_taken_is_not_left_parked(
    scenario: Scenario, db: DatabaseChoice
) -> None:
    """The SRE for the first arrest and a re-booking race: the CPI must not wait forever."""
    if db.kind != "postgres":
        pytest.skip("SQLite serialises every transaction: there is no race to lose")
    fed = scenario.fed
    await fed.hosts[Agency.CJIS_IAFIS].stop()
    subject = scenario.subject()
    first = (await scenario.client.get(f"/v1/bookings/{await scenario.book(subject, TX)}")).json()

    # An SRE in flight: the state record is locked and gets its FBI number, not yet committed.
    sre = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    watcher = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        tx = sre.transaction()
        await tx.start()
        table = f'"{db.schema(Agency.SIB)}".state_subjects'
        await sre.execute(f"SELECT 1 FROM {table} WHERE sid = $1 FOR UPDATE", first["sid"])
        await sre.execute(
            f"UPDATE {table} SET fbi_number = 'FBI-RACE' WHERE sid = $1", first["sid"]
        )
        second = asyncio.create_task(scenario.book(subject, TX))
        for _ in range(100):  # until the booking waits on the lock (bounded: 10 s)
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting or second.done():
                break
            await asyncio.sleep(0.1)
        await tx.commit()
        second_tcn = await second
    finally:
        await sre.close()
        await watcher.close()
    view = (await scenario.client.get(f"/v1/bookings/{second_tcn}")).json()
    assert view["transaction"] == "CPI" and view["status"] == "submitted", view


async def test_a_parked_cpi_goes_as_a_car_when_the_first_arrest_is_refused(
    scenario: Scenario, db: DatabaseChoice
) -> None:
    """No FBI number will ever come for a refused first arrest: the CPI must not wait forever."""
    fed = scenario.fed
    await fed.hosts[Agency.CJIS_IAFIS].stop()
    subject = scenario.subject()
    first_tcn = await scenario.book(subject, TX)
    second_tcn = await scenario.book(subject, TX)
    async with grpc.aio.insecure_channel(fed.addresses()[Agency.SIB]) as channel:
        errt = sib_pb2.ErrtMessage(
            envelope=common_pb2.Envelope(
                message_id=str(uuid.uuid4()),
                tot="ERRT",
                tcn=first_tcn,
                tcr=first_tcn,
                ori=TX,
                pry=5,
                sender=Agency.CJIS_IAFIS,
            ),
            errt=common_pb2.Errt(refused_tcn=first_tcn, code="E0001", reason="prints unusable"),
        )
        await sib_pb2_grpc.StateIdentificationBureauStub(channel).DeliverErrt(errt)

    await fed.restart(Agency.CJIS_IAFIS, db)
    first, second = await scenario.final(first_tcn), await scenario.final(second_tcn)
    assert first["status"] == "refused"
    assert second["status"] == "answered" and second["transaction"] == "CAR"
    assert _response(second, "SRE")["body"]["fbi_number"]
