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
from services.runtime.ports import free_port
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


def _iaq(message_id: str) -> lesc_pb2.Iaq:
    return lesc_pb2.Iaq(envelope=common_pb2.Envelope(message_id=message_id, tot="IAQ", tcn="T1"))


async def test_a_message_written_while_the_worker_runs_goes_on_commit_not_at_the_next_poll(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    seen: list[str] = []
    peer, address = await _peer(0.0, seen)
    # A poll an hour apart: only the direct path can deliver within the test.
    outbox = Outbox(
        db,
        service=Agency.CJIS_IAFIS,
        peers={Agency.LESC: address},
        policy=RetryPolicy(),
        poll_s=3600.0,
    )
    outbox.start()
    try:
        await asyncio.sleep(0.2)  # the worker's first round has run and found nothing
        async with db.session() as session:
            outbox.add(session, route=ROUTE, message=_iaq("m-1"))
            outbox.add(session, route=ROUTE, message=_iaq("m-2"))
        await eventually(
            lambda: _true(outbox.delivered_here == 2), timeout=5, what="both sent on commit"
        )
        assert (await outbox.stats())["delivered"] == 2
        assert len(seen) == 2
        # A transaction that rolls back sends nothing.
        try:
            async with db.session() as session:
                outbox.add(session, route=ROUTE, message=_iaq("m-3"))
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        await asyncio.sleep(0.3)
        assert len(seen) == 2
        assert (await outbox.stats())["pending"] == 0
    finally:
        await outbox.stop()
        await peer.stop(None)
        await db.dispose()


async def test_a_direct_send_that_fails_is_retried_by_the_poll_and_a_stop_leaves_nothing_held(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    port = free_port()
    policy = RetryPolicy(max_attempts=1000, base_delay_s=0.02, max_delay_s=0.1, deadline_s=1.0)
    outbox = Outbox(
        db,
        service=Agency.CJIS_IAFIS,
        peers={Agency.LESC: f"127.0.0.1:{port}"},
        policy=policy,
        poll_s=0.05,
    )
    seen: list[str] = []
    peer: grpc.aio.Server | None = None
    outbox.start()
    try:
        async with db.session() as session:
            outbox.add(session, route=ROUTE, message=_iaq("m-1"))
        # Nobody listens: the direct call fails, and the failure is settled as a retry.
        await eventually(
            lambda: _true(outbox.calls_here >= 2), timeout=10, what="the poll to retry"
        )
        peer, _ = await _peer(0.0, seen, port=port)
        await eventually(lambda: _delivered(outbox), timeout=10, what="the retry to arrive")
    finally:
        await outbox.stop()
        if peer is not None:
            await peer.stop(None)
        await db.dispose()


async def test_rows_queued_for_the_direct_path_at_stop_are_due_at_once_for_the_next_start(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    seen: list[str] = []
    peer, address = await _peer(5.0, seen)  # every call hangs: the senders stay busy
    policy = RetryPolicy(deadline_s=30.0)
    outbox = Outbox(
        db,
        service=Agency.CJIS_IAFIS,
        peers={Agency.LESC: address},
        policy=policy,
        batch=4,
        poll_s=3600.0,
    )
    outbox.start()
    try:
        async with db.session() as session:
            for i in range(40):  # more than the 16 senders can hold
                outbox.add(session, route=ROUTE, message=_iaq(f"m-{i}"))
        await eventually(lambda: _true(len(seen) >= 16), timeout=5, what="the senders to call")
    finally:
        await outbox.stop()
        await peer.stop(None)
    try:
        restarted = Outbox(
            db,
            service=Agency.CJIS_IAFIS,
            peers={Agency.LESC: address},
            policy=policy,
            poll_s=3600.0,
        )
        delivered, _ = await restarted.run_once()
        # Every row is due now: those still queued and the 16 cut off mid-call (which may have
        # arrived: the receiver's inbox takes a second copy as a repeat).
        assert delivered == 40
    finally:
        await db.dispose()
