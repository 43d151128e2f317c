"""Helpers the tests share besides fixtures: polling until a condition holds, whether the test
PostgreSQL answers, and the waits on a running federation (a booking final, the outboxes idle)."""

from __future__ import annotations

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
