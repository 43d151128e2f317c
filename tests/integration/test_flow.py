"""The whole MOA message flow through five real services on loopback."""

from __future__ import annotations

from typing import Any

import httpx

from services.world.seeding import seed_world
from services.world.world import build_world, booking_payload
from tests.conftest import eventually
from tests.federation import Federation


async def _final(client: httpx.AsyncClient, tcn: str) -> dict[str, Any]:
    view: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal view
        view = (await client.get(f"/v1/bookings/{tcn}")).json()
        return view["status"] in ("answered", "refused")

    await eventually(done, what=f"booking {tcn} to be answered")
    return view


async def test_bookings_flow_end_to_end(federation: Federation) -> None:
    world = build_world(3, 40, rebook_gap=4)
    await seed_world(world, federation.addresses())
    async with httpx.AsyncClient(base_url=federation.sib_url) as client:
        tcns = []
        for booking in world.bookings:
            r = await client.post("/v1/bookings", json=booking_payload(world, booking))
            assert r.status_code == 202, r.text
            tcns.append(r.json()["tcn"])
        views = [await _final(client, tcn) for tcn in tcns]
        summary = (await client.get("/v1/bookings-summary")).json()
    assert all(v["status"] == "answered" for v in views), [v for v in views if v["status"] != "answered"]
    print(summary)
