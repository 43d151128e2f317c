"""More than one replica against one PostgreSQL: each message processed exactly once, every
booking answered, and both replicas of a worker doing part of the work.

LESC and the ICE field offices run two processes each (separate OS processes on one schema per
service); their peers' `*_ADDR` list both, and the outboxes send to them in turn. The SIB,
CJIS/IAFIS and IDENT run one each: each keeps a biometric index in memory (the state tenprint
file, the criminal master file, IDENT's gallery) that is filled by its own enrolments, so a
second replica would not find what the first enrolled and searches would miss.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import MetaData

from services.cli.demo import submit_bookings
from services.cli.launcher import LocalFederation
from services.cli.remote import wait_answered
from services.federation import Agency
from services.runtime.clock import AcceleratedClock
from services.runtime.clock_epoch import share_epoch
from services.runtime.db import Database
from services.runtime.models import RuntimeBase
from services.sib.lea_client import LeaKeys
from services.sib.models import FINISHED
from services.world.seeding import seed_world
from services.world.world import build_world
from tests.federation import POSTGRES_URL
from tests.support import drop_schemas, eventually, outboxes_idle, postgres_reachable

pytestmark = pytest.mark.postgres

BOOKINGS = 60
REPLICAS = {Agency.LESC: 2, Agency.ICE_FIELD: 2}
PG = POSTGRES_URL.replace("+asyncpg", "")


@pytest.fixture
async def postgres() -> None:
    """PostgreSQL must answer (the test is marked postgres; CI requires it)."""
    if not await postgres_reachable():
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer")


@pytest.fixture
async def schema_prefix(postgres: None) -> AsyncIterator[str]:
    """A fresh schema prefix, and its schemas dropped afterwards."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    yield prefix
    await drop_schemas(f"{prefix}_{name}" for name in tuple(Agency))


async def test_replicas_starting_together_create_the_schema_once(schema_prefix: str) -> None:
    schema = f"{schema_prefix}_{Agency.LESC}"
    databases = [Database(POSTGRES_URL, schema=schema) for _ in range(6)]
    try:
        await asyncio.gather(*(db.connect([RuntimeBase.metadata]) for db in databases))
        assert all([await db.ping() for db in databases])
    finally:
        for db in databases:
            await db.dispose()


async def test_replicas_share_one_accelerated_agency_clock(schema_prefix: str) -> None:
    db = Database(POSTGRES_URL, schema=f"{schema_prefix}_{Agency.ICE_FIELD}")
    await db.connect([RuntimeBase.metadata, MetaData()])
    try:
        first = AcceleratedClock(3600.0)
        await share_epoch(db, first)
        await asyncio.sleep(0.3)  # a second replica starts later: 0.3 s is 18 agency minutes
        second = AcceleratedClock(3600.0, epoch=datetime(2030, 1, 1, tzinfo=UTC))
        await share_epoch(db, second)
        assert abs(first.now() - second.now()) < timedelta(seconds=36)  # 10 ms of wall time
        # A restart with another speed goes on from the agency time reached, never back.
        before = first.now()
        third = AcceleratedClock(60.0)
        await share_epoch(db, third)
        assert third.now() >= before - timedelta(seconds=36)
        assert third.now() - before < timedelta(minutes=5)
    finally:
        await db.dispose()


async def test_two_replicas_of_each_worker_process_every_message_exactly_once(
    schema_prefix: str, tmp_path: Path
) -> None:
    world = build_world(21, BOOKINGS, rebook_gap=32)
    fed = LocalFederation(
        data_dir=tmp_path,
        database_url=POSTGRES_URL,
        schema_prefix=schema_prefix,
        replicas=REPLICAS,
        extra_env={
            # Analysts answer at once, so the test measures delivery, not staffing.
            "SCFED_LESC_ANALYST_MINUTES": "0",
            "SCFED_LESC_VTC_MINUTES": "0",
            "SCFED_OUTBOX_BASE_DELAY_S": "0.02",
            "SCFED_OUTBOX_MAX_DELAY_S": "0.3",
            "SCFED_OUTBOX_POLL_S": "0.1",
            "SCFED_OUTBOX_MAX_ATTEMPTS": "100000",
        },
    )
    fed.start()
    try:
        await fed.wait_ready(timeout=60)
        seeded = await seed_world(world, fed.addresses(), channels=fed.operator_channels())
        async with httpx.AsyncClient(
            base_url=fed.services[Agency.SIB].http_url,
            timeout=60.0,
            auth=LeaKeys(seeded.lea_keys),
        ) as client:
            tcns, refused_at_edge = await submit_bookings(client, world, 16, lambda *_: None)
            assert refused_at_edge == []
            assert len(tcns) == BOOKINGS
            views = await wait_answered(client, tcns, timeout_s=90)
            unanswered = [t for t in tcns if views[t]["status"] not in FINISHED]
            assert unanswered == [], {t: views[t]["status"] for t in unanswered}
            urls = [svc.http_url for svc in fed.processes()]
            await eventually(lambda: outboxes_idle(client, urls), what="every outbox to drain")
            assert fed.exited() == []
            shares = {
                (svc.name, svc.replica): (await client.get(f"{svc.http_url}/v1/replica")).json()
                for svc in fed.processes()
            }
            summary = (await client.get("/v1/bookings-summary")).json()
    finally:
        fed.stop()

    # Both replicas of every scaled worker took messages in and delivered messages out.
    for name, count in REPLICAS.items():
        for replica in range(1, count + 1):
            share = shares[(name, replica)]
            assert share["received_processed"] > 0, (name, replica, share)
        assert len({shares[(name, r)]["pid"] for r in range(1, count + 1)}) == count
    assert sum(shares[(Agency.LESC, r)]["delivered"] for r in (1, 2)) > 0
    assert all(shares[(Agency.LESC, r)]["delivered"] > 0 for r in (1, 2))

    conn = await asyncpg.connect(PG)
    try:

        async def rows(service: str, query: str) -> list[asyncpg.Record]:
            return list(await conn.fetch(query.replace("S.", f'"{schema_prefix}_{service}".')))

        for name in Agency:
            # Processed once: no message id journaled as processed twice, and the inbox (its
            # primary key is the message id) holds exactly the processed ones.
            twice = await rows(
                name,
                "SELECT message_id, count(*) FROM S.journal WHERE direction = 'received' "
                "AND outcome = 'processed' GROUP BY message_id HAVING count(*) > 1",
            )
            assert twice == [], (name, twice)
            processed = await rows(
                name,
                "SELECT count(*) AS n FROM S.journal "
                "WHERE direction = 'received' AND outcome = 'processed'",
            )
            inbox = await rows(name, "SELECT count(*) AS n FROM S.inbox")
            assert processed[0]["n"] == inbox[0]["n"], name
            # Delivered once each: nothing pending, in flight or dead.
            statuses = await rows(name, "SELECT status, count(*) AS n FROM S.outbox GROUP BY 1")
            assert {r["status"] for r in statuses} <= {"delivered"}, (name, statuses)
        # Every message sent was received and processed by its peer, exactly once.
        sent = 0
        for name in Agency:
            sent += (await rows(name, "SELECT count(*) AS n FROM S.outbox"))[0]["n"]
        received = 0
        for name in Agency:
            received += (await rows(name, "SELECT count(*) AS n FROM S.inbox"))[0]["n"]
        assert received == sent

        # The field offices' detainers: one per person, none twice; each I-247 the SIB
        # received lodged one, with the booking that opened it or a later booking of the same
        # person it moved to.
        detainers = await rows(Agency.ICE_FIELD, "SELECT count(*) AS n FROM S.detainers")
        lodged = await rows(
            Agency.ICE_FIELD,
            "SELECT count(*) AS n FROM S.case_bookings "
            "WHERE effect IN ('opened', 'detainer moved')",
        )
        opened = await rows(
            Agency.ICE_FIELD, "SELECT count(*) AS n FROM S.case_bookings WHERE effect = 'opened'"
        )
        i247 = await rows(Agency.SIB, "SELECT count(*) AS n FROM S.responses WHERE kind = 'I-247'")
        assert lodged[0]["n"] == i247[0]["n"] == sum(summary["detainers"].values())
        assert opened[0]["n"] == detainers[0]["n"] > 0
        iaqs = await rows(
            Agency.LESC,
            "SELECT count(*) AS n FROM S.journal WHERE tot = 'IAQ' AND outcome = 'processed'",
        )
        iar_copies = await rows(
            Agency.ICE_FIELD,
            "SELECT count(*) AS n FROM S.journal WHERE direction = 'received' "
            "AND outcome = 'processed' AND tot LIKE 'IAR%'",
        )
        assert iaqs[0]["n"] == iar_copies[0]["n"] > 0
        print(
            f"replicas: {BOOKINGS} bookings, {sent} messages each processed once, "
            f"{detainers[0]['n']} detainers, {iaqs[0]['n']} IAQs; per process "
            + ", ".join(
                f"{n}#{r} in {s['received_processed']} out {s['delivered']}"
                for (n, r), s in sorted(shares.items())
            )
        )
    finally:
        await conn.close()
