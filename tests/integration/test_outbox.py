"""The delivery worker survives its peer moving while a call is in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2
from services.federation import Agency
from services.runtime import message_routes
from services.runtime.db import Database
from services.runtime.delivery import Outbox, RetryPolicy
from services.runtime.models import RuntimeBase
from tests.conformance.harness import free_port
from tests.support import eventually

# A real route, served by a stand-in peer that takes the raw bytes.
ROUTE = message_routes.LESC_SUBMIT_IAQ


async def _peer(delay: float, seen: list[str], port: int = 0) -> tuple[grpc.aio.Server, str]:
    async def deliver(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append("call")
        await asyncio.sleep(delay)
        return common_pb2.Ack(message_id="m-1").SerializeToString()

    service, _, method = ROUTE.path.removeprefix("/").partition("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(deliver)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_moving_a_peer_mid_call_neither_kills_the_worker_nor_loses_the_message(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    slow_calls: list[str] = []
    fast_calls: list[str] = []
    slow, slow_addr = await _peer(2.0, slow_calls)
    fast, fast_addr = await _peer(0.0, fast_calls)
    outbox = Outbox(
        db,
        service=Agency.CJIS_IAFIS,
        peers={Agency.LESC: slow_addr},
        policy=RetryPolicy(base_delay_s=0.02, max_delay_s=0.1, deadline_s=5.0),
        poll_s=0.05,
    )
    try:
        async with db.session() as session:
            outbox.add(
                session,
                route=ROUTE,
                message=lesc_pb2.Iaq(
                    envelope=common_pb2.Envelope(message_id="m-1", tot="IAQ", tcn="T1")
                ),
            )
        outbox.start()
        await eventually(lambda: _true(bool(slow_calls)), what="the slow call to start")
        outbox.set_peer(Agency.LESC, fast_addr)
        await eventually(lambda: _delivered(outbox), timeout=15, what="the message to be delivered")
        assert outbox.running
    finally:
        await outbox.stop()
        await slow.stop(None)
        await fast.stop(None)
        await db.dispose()


async def _true(value: bool) -> bool:
    return value


async def _delivered(outbox: Outbox) -> bool:
    return (await outbox.stats())["delivered"] == 1


async def test_a_peer_back_after_a_long_absence_gets_its_mail_within_the_outbox_retry(
    tmp_path: Path,
) -> None:
    # gRPC's own reconnect backoff grows toward two minutes while nobody listens; the outbox's
    # channels must try again at least as often as the outbox retries (here: every 0.1 s).
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    port = free_port()
    outbox = Outbox(
        db,
        service=Agency.CJIS_IAFIS,
        peers={Agency.LESC: f"127.0.0.1:{port}"},
        policy=RetryPolicy(
            max_attempts=100_000, base_delay_s=0.02, max_delay_s=0.1, deadline_s=2.0
        ),
        poll_s=0.05,
    )
    seen: list[str] = []
    peer: grpc.aio.Server | None = None
    try:
        async with db.session() as session:
            outbox.add(
                session,
                route=ROUTE,
                message=lesc_pb2.Iaq(
                    envelope=common_pb2.Envelope(message_id="m-1", tot="IAQ", tcn="T1")
                ),
            )
        outbox.start()
        await asyncio.sleep(20)  # the peer is down: gRPC's backoff would now be 10 to 16 s
        peer, _ = await _peer(0.0, seen, port=port)
        await eventually(lambda: _delivered(outbox), timeout=3, what="the message to arrive")
    finally:
        await outbox.stop()
        if peer is not None:
            await peer.stop(None)
        await db.dispose()
