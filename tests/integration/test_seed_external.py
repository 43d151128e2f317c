"""Seeding a federation whose agency is someone else's: an agency that does not implement its
seeding RPC is named as not seeded, and the others are seeded all the same."""

from __future__ import annotations

import grpc

from services.federation import Agency
from services.world.seeding import seed_world
from services.world.world import build_world
from tests.federation import DatabaseChoice, running_federation


async def test_an_agency_without_its_seeding_rpc_is_named_and_the_rest_seeded(
    db: DatabaseChoice,
) -> None:
    # An outside IDENT that implements none of IDENT's methods.
    bare = grpc.aio.server()
    port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    try:
        async with running_federation(db) as fed:
            addresses = {**fed.addresses(), Agency.IDENT: f"127.0.0.1:{port}"}
            counts = await seed_world(build_world(5, 10), addresses)
    finally:
        await bare.stop(0)
    assert set(counts.not_seeded) == {Agency.IDENT}
    assert counts.not_seeded[Agency.IDENT].startswith("UNIMPLEMENTED")
    assert counts.ident_encounters == 0
    assert counts.states > 0 and counts.field_offices > 0 and counts.criminal_records > 0
