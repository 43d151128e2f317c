"""Shared fixtures: the database choice (SQLite and PostgreSQL) and in-process federations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.federation import Agency
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.support import drop_schemas, postgres_or_skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DatabaseChoice]:
    """Each test that takes `db` runs on SQLite and on PostgreSQL."""
    choice = DatabaseChoice(kind=request.param, tmp=tmp_path)
    if choice.kind == "postgres":
        await postgres_or_skip()
    yield choice
    if choice.kind == "postgres":
        await drop_schemas(choice.schema(service) for service in tuple(Agency))


@pytest.fixture
async def federation(db: DatabaseChoice) -> AsyncIterator[Federation]:
    """All five services started in this process, wired on loopback."""
    async with running_federation(db) as fed:
        yield fed
