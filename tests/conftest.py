"""Shared fixtures: the database choice (SQLite and PostgreSQL) and in-process federations."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from services.federation import Agency
from tests.federation import POSTGRES_URL, DatabaseChoice, Federation, running_federation

_postgres_state: dict[str, bool] = {}


async def _postgres_reachable() -> bool:
    if "ok" not in _postgres_state:
        try:
            conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""), timeout=3)
            await conn.close()
            _postgres_state["ok"] = True
        except (OSError, asyncpg.PostgresError):
            _postgres_state["ok"] = False
    return _postgres_state["ok"]


async def _drop_schemas(db: DatabaseChoice) -> None:
    conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        for service in Agency:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{db.schema(service)}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DatabaseChoice]:
    """Each test that takes `db` runs on SQLite and on PostgreSQL."""
    choice = DatabaseChoice(kind=request.param, tmp=tmp_path)
    if choice.kind == "postgres" and not await _postgres_reachable():
        if os.environ.get("SCFED_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required but {POSTGRES_URL} does not answer")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} does not answer")
    yield choice
    if choice.kind == "postgres":
        await _drop_schemas(choice)


@pytest.fixture
async def federation(db: DatabaseChoice) -> AsyncIterator[Federation]:
    """All five services started in this process, wired on loopback."""
    async with running_federation(db) as fed:
        yield fed


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Polls `check` until it holds; fails after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
