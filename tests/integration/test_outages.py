"""A service whose database stops answering says so: gRPC health and /readyz turn NOT_SERVING
and 503 together, every edge answers 503 / UNAVAILABLE with the reason, the outage is logged in
a few lines (not a traceback per request), and all comes back when the database does."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from scfed.common.v1 import common_pb2, common_pb2_grpc
from services.federation import Agency
from services.runtime.db import Database
from services.runtime.ports import free_port
from services.runtime.server import DATABASE_UNREACHABLE_EXIT, LIVENESS, ServiceHost
from tests.federation import POSTGRES_URL, DatabaseChoice, make_host
from tests.support import TcpProxy, drop_schemas, postgres_or_skip

ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@asynccontextmanager
async def database_out(db: Database, tmp_path: Path) -> AsyncIterator[None]:
    """Points the service's engine at a SQLite file that cannot be opened (its directory does
    not exist): every query fails as a lost database does, until the block ends."""
    engine, sessions = db._engine, db._sessions
    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gone.db'}")
    db._engine, db._sessions = broken, async_sessionmaker(broken)
    try:
        yield
    finally:
        db._engine, db._sessions = engine, sessions
        await broken.dispose()


@asynccontextmanager
async def started(host: ServiceHost) -> AsyncIterator[ServiceHost]:
    """The host, started, and stopped afterwards."""
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def _health(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return int(reply.status)


async def _until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_grpc_health_follows_the_database_and_the_delivery_worker(tmp_path: Path) -> None:
    host = make_host(Agency.IDENT, DatabaseChoice("sqlite", tmp_path), readiness_probe_s=0.1)
    async with started(host), httpx.AsyncClient(base_url=host.http_url) as http:
        assert await _health(host.grpc_address) == SERVING
        async with database_out(host.runtime.db, tmp_path):

            async def not_serving() -> bool:
                return bool(await _health(host.grpc_address) == NOT_SERVING)

            await _until(not_serving)
            # The liveness name stays SERVING: an outage does not get the pod restarted.
            assert await _health(host.grpc_address, LIVENESS) == SERVING
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"].startswith("database does not answer:")
        await _until(lambda: _is(host.grpc_address, SERVING))
        assert (await http.get("/readyz")).status_code == 200

        await host.runtime.outbox.stop()
        await _until(lambda: _is(host.grpc_address, NOT_SERVING))
        assert (await http.get("/readyz")).json()["reason"] == "delivery worker is not running"
        host.runtime.outbox.start()
        await _until(lambda: _is(host.grpc_address, SERVING))


async def _is(address: str, status: int) -> bool:
    return bool(await _health(address) == status)


class _Lines(logging.Handler):
    """Every record logged, from the root and from uvicorn's own (non-propagating) loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_lines() -> Iterator[_Lines]:
    """Collects log records at INFO and above while the test runs."""
    handler = _Lines()
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in (None, "uvicorn", "uvicorn.error")]
    root_level = loggers[0].level
    loggers[0].setLevel(logging.INFO)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        loggers[0].setLevel(root_level)


async def test_an_outage_is_answered_503_and_unavailable_and_logged_in_a_few_lines(
    tmp_path: Path, log_lines: _Lines
) -> None:
    host = make_host(
        Agency.IDENT,
        DatabaseChoice("sqlite", tmp_path),
        readiness_probe_s=0.1,
        outage_summary_s=0.5,
        outbox_poll_s=0.01,
    )
    async with (
        started(host),
        httpx.AsyncClient(base_url=host.http_url) as http,
        grpc.aio.insecure_channel(host.grpc_address) as channel,
    ):
        journal = common_pb2_grpc.JournalStub(channel)
        log_lines.records.clear()
        async with database_out(host.runtime.db, tmp_path):
            began = time.monotonic()
            requests = 0
            # Enough refused requests to outnumber the lines by far, however loaded the machine
            # (bounded: a stalled service fails the count below).
            while requests < 40 and time.monotonic() - began < 30.0:
                outbox = await http.get("/v1/outbox")
                assert outbox.status_code == 503, outbox.text
                assert outbox.json()["detail"].startswith("database unavailable:")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await journal.GetJournal(common_pb2.JournalQuery(tcn="T1"), timeout=2)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "database unavailable" in (refused.value.details() or "")
                requests += 2
                await asyncio.sleep(0.01)
            lasted = time.monotonic() - began
        await _until(lambda: _is(host.grpc_address, SERVING))
        assert (await http.get("/v1/outbox")).status_code == 200
        # The outage's lines, not the shutdown's: stopping cancels the worker and the probe,
        # and SQLAlchemy logs a connection it could not roll back while cancelled.
        records = list(log_lines.records)

    assert requests >= 40
    messages = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info], "no traceback during an outage"
    started_lines = [m for m in messages if "does not answer (" in m]
    summaries = [m for m in messages if "still does not answer" in m]
    ended = [m for m in messages if "answers again" in m]
    assert len(started_lines) == 1, messages
    # One summary per outage_summary_s (0.5 s) at most, whatever the number of requests.
    most = int(lasted / 0.5) + 2
    assert 1 <= len(summaries) <= most, messages
    assert len(ended) == 1 and "request(s) refused" in ended[0], messages
    assert len(messages) <= most + 3, messages


@pytest.mark.postgres
async def test_a_postgres_outage_is_answered_503_and_the_pool_recovers(tmp_path: Path) -> None:
    # The service reaches PostgreSQL through a relay the test cuts: every pooled connection is
    # reset and new ones refused, as when the server restarts or the network goes.
    await postgres_or_skip()
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    url = POSTGRES_URL.replace(":5432/", f":{proxy.port}/")
    choice = DatabaseChoice("postgres", tmp_path, postgres_url=url)
    host = make_host(Agency.IDENT, choice, readiness_probe_s=0.1, db_connect_timeout_s=1.0)
    try:
        async with (
            started(host),
            httpx.AsyncClient(base_url=host.http_url) as http,
            grpc.aio.insecure_channel(host.grpc_address) as channel,
        ):
            journal = common_pb2_grpc.JournalStub(channel)
            # Several requests at once, so the pool holds more than one connection to lose.
            answers = await asyncio.gather(*(http.get("/v1/outbox") for _ in range(8)))
            assert {r.status_code for r in answers} == {200}
            await proxy.cut()
            await _until(lambda: _is(host.grpc_address, NOT_SERVING))
            outbox = await http.get("/v1/outbox")
            assert outbox.status_code == 503 and outbox.json()["detail"].startswith(
                "database unavailable:"
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await journal.GetJournal(common_pb2.JournalQuery(tcn="T1"), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

            await proxy.heal()
            await _until(lambda: _is(host.grpc_address, SERVING))
            answers = await asyncio.gather(*(http.get("/v1/outbox") for _ in range(8)))
            assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
            page = await journal.GetJournal(common_pb2.JournalQuery(tcn="T1"), timeout=5)
            assert list(page.entries) == []
    finally:
        await proxy.cut()
        await drop_schemas([choice.schema(Agency.IDENT)])


def _start_against(url: str, http_port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.ident"],
        cwd=ROOT,
        env={
            **os.environ,
            "SCFED_IDENT_DATABASE_URL": url,
            "SCFED_IDENT_HTTP_PORT": str(http_port),
            "SCFED_IDENT_DB_CONNECT_TIMEOUT_S": "0.5",
            "SCFED_IDENT_DB_START_ATTEMPTS": "4",
            # The database is what is under test here, not certificates.
            "SCFED_TLS": "off",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("listener", ["never answers", "refuses"])
def test_a_service_that_cannot_reach_its_database_at_start_says_so_in_one_line(
    listener: str,
) -> None:
    # A listener that accepts connections (the kernel's backlog) and never answers, or a port
    # nobody listens on.
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = server.getsockname()[1]
    if listener == "refuses":
        server.close()
    url = f"postgresql+asyncpg://scfed:s3cret-pw@127.0.0.1:{port}/federation"
    http_port = free_port()
    began = time.monotonic()
    process = _start_against(url, http_port)
    try:
        # Meanwhile its HTTP edge is up and says why it is not ready.
        deadline = time.monotonic() + 60
        ready = None
        while ready is None and time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.05)
        assert ready is not None and ready.status_code == 503
        assert ready.json()["status"] == "not-ready"
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
        server.close()
    elapsed = time.monotonic() - began
    assert process.returncode == DATABASE_UNREACHABLE_EXIT, stderr
    assert "Traceback" not in stderr and "s3cret" not in stderr + stdout
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"ident: cannot reach its database at 127.0.0.1:{port}/federation: ")
    assert "gave up after 4 attempt(s)" in last
    cause = "no answer within 0.5s" if listener == "never answers" else "Connect"
    assert cause in last, last
    # Four attempts of at most 0.5 s, 1 s, 2 s and 4 s apart, plus the interpreter's start
    # (slow on a loaded machine): not the minute asyncpg would wait by itself.
    assert elapsed < 60, elapsed
