"""Helpers the tests share besides fixtures: polling until a condition holds, whether the test
PostgreSQL answers, the waits on a running federation (a booking final, the outboxes idle), and
a TCP relay a test can cut."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx
import pytest

from services.cli import demo
from services.testing.waits import eventually, final_booking
from tests.federation import POSTGRES_URL

__all__ = [
    "TcpProxy",
    "drop_schemas",
    "eventually",
    "final_booking",
    "outboxes_idle",
    "postgres_or_skip",
    "postgres_reachable",
    "response_kinds",
    "wait_outboxes_idle",
]

_postgres_state: dict[str, bool] = {}


async def postgres_reachable() -> bool:
    """True when the test PostgreSQL answers; asked once per test session."""
    if "ok" not in _postgres_state:
        try:
            conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""), timeout=3)
            await conn.close()
            _postgres_state["ok"] = True
        except (OSError, asyncpg.PostgresError):
            _postgres_state["ok"] = False
    return _postgres_state["ok"]


async def postgres_or_skip() -> None:
    """Skips the calling test when the test PostgreSQL does not answer, or fails it where
    SCFED_REQUIRE_POSTGRES says PostgreSQL must be there (CI)."""
    if await postgres_reachable():
        return
    if os.environ.get("SCFED_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL is required but {POSTGRES_URL} does not answer")
    pytest.skip(f"PostgreSQL at {POSTGRES_URL} does not answer")


async def drop_schemas(schemas: Iterable[str]) -> None:
    """Drops these schemas of the test PostgreSQL, with all they hold, where they exist."""
    await demo.drop_schemas(POSTGRES_URL, schemas)


def response_kinds(view: dict[str, Any]) -> list[str]:
    """The kinds of the responses in a booking's view, in the order they came."""
    return [r["kind"] for r in view["responses"]]


async def outboxes_idle(client: httpx.AsyncClient, http_urls: Iterable[str]) -> bool:
    """True when no service at these HTTP base URLs holds a pending or in-flight message."""
    for url in http_urls:
        r = await client.get(f"{url}/v1/outbox")
        assert r.status_code == 200, f"{url}/v1/outbox: {r.status_code} {r.text}"
        stats = r.json()
        if stats["pending"] or stats["inflight"]:
            return False
    return True


async def wait_outboxes_idle(
    http_urls: Iterable[str], *, timeout: float = 30.0, what: str = "every outbox to drain"
) -> None:
    """Waits until no service at these HTTP base URLs holds an undelivered message."""
    urls = list(http_urls)
    async with httpx.AsyncClient() as client:
        await eventually(lambda: outboxes_idle(client, urls), timeout=timeout, what=what)


class TcpProxy:
    """A TCP relay on loopback to `target`, which a test can cut (every open connection reset,
    new ones refused) and heal on the same port: a database or peer that goes away and comes
    back, as the network shows it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Listens (on a free port the first time, the same port after a cut); returns it."""
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def cut(self) -> None:
        """Stops listening and resets every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def heal(self) -> None:
        """Listens again on the same port."""
        await self.start()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})
