"""Seeding through the services' own APIs: the world's states and agencies registered at a SIB
as the world describes them."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import httpx

from scfed.sib.v1 import sib_pb2_grpc
from services.federation import Agency
from services.world.rollout import PLAN_PHASES
from services.world.seeding import register_jurisdictions
from services.world.world import AGENCIES, STATES, booking_payload, build_world
from tests.federation import DatabaseChoice, make_host


async def test_registered_states_and_agencies_decide_which_bookings_expect_an_idr(
    db: DatabaseChoice,
) -> None:
    # The SIB runs alone: what it sends to CJIS stays queued.
    sib = make_host(Agency.SIB, db, cjis_iafis_addr="127.0.0.1:9")
    await sib.start()
    try:
        async with grpc.aio.insecure_channel(sib.grpc_address) as channel:
            stub = sib_pb2_grpc.StateIdentificationBureauStub(channel)
            await register_jurisdictions(stub, STATES, AGENCIES)
        async with httpx.AsyncClient(base_url=sib.http_url, timeout=30) as client:
            states = (await client.get("/v1/states")).json()
            assert [
                (
                    s["code"],
                    s["name"],
                    s.get("nff", False),
                    s.get("relay_capable", False),
                    s["moa_status"],
                    s["sib_ori"],
                )
                for s in sorted(states, key=lambda s: s["code"])
            ] == [
                (s.code, s.name, s.nff, s.relay_capable, f"MOA_STATUS_{s.moa_status}", s.sib_ori)
                for s in sorted(STATES, key=lambda s: s.code)
            ]

            world = build_world(3, 1)
            expects_idr = {}
            for n, ori in enumerate(("CA0190000", "CA0150000", "AZ0070000")):
                body = booking_payload(world, world.bookings[0])
                body.update(ori=ori, booking_number=f"SEED-{n}")
                r = await client.post("/v1/bookings", json=body)
                assert r.status_code == 202, r.text
                view = (await client.get(f"/v1/bookings/{r.json()['tcn']}")).json()
                expects_idr[ori] = view["expects_idr"]
            # Los Angeles is activated in an active state; Kern is not activated; Arizona's MOA
            # is suspended.
            assert expects_idr == {"CA0190000": True, "CA0150000": False, "AZ0070000": False}
            body = booking_payload(world, world.bookings[0])
            body.update(ori="WY0010000", booking_number="SEED-WY")
            r = await client.post("/v1/bookings", json=body)
            assert r.status_code == 422 and "WY0010000" in r.text, r.text
    finally:
        await sib.stop()


async def test_a_world_under_the_rollout_registers_each_jurisdictions_activation_day(
    db: DatabaseChoice,
) -> None:
    world = build_world(2009, 200, rollout=PLAN_PHASES)
    # A jurisdiction of a state whose MOA is in effect, activated after the first phase began.
    dated = next(
        a
        for a in world.agencies
        if a.activated_on > "20081001" and world.state_of(a.ori).moa_status == "ACTIVE"
    )
    day_before = (datetime.strptime(dated.activated_on, "%Y%m%d") - timedelta(days=1)).strftime(
        "%Y%m%d"
    )
    sib = make_host(Agency.SIB, db, cjis_iafis_addr="127.0.0.1:9")
    await sib.start()
    try:
        async with grpc.aio.insecure_channel(sib.grpc_address) as channel:
            stub = sib_pb2_grpc.StateIdentificationBureauStub(channel)
            await register_jurisdictions(stub, world.states, world.agencies)
        async with httpx.AsyncClient(base_url=sib.http_url, timeout=30) as client:
            expects_idr = {}
            for doa in (day_before, dated.activated_on):
                body = booking_payload(world, world.bookings[0])
                body.update(ori=dated.ori, booking_number=f"ROLLOUT-{doa}", doa=doa)
                r = await client.post("/v1/bookings", json=body)
                assert r.status_code == 202, r.text
                view = (await client.get(f"/v1/bookings/{r.json()['tcn']}")).json()
                expects_idr[doa] = view["expects_idr"]
            assert expects_idr == {day_before: False, dated.activated_on: True}
            measures = (await client.get("/v1/measures")).json()
            phase = f"rollout_phase_{dated.rollout_phase}"
            assert measures[f"{phase}_bookings"] == 2
            assert measures[f"{phase}_bookings_checked_against_ident"] == 1
            assert measures[f"{phase}_jurisdictions"] == len(
                world.rollout.jurisdictions(dated.rollout_phase)  # type: ignore[union-attr]
            )
    finally:
        await sib.stop()
