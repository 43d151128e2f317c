"""Shared fixtures: the database choice (SQLite and PostgreSQL) and in-process federations."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.federation import Agency
from services.runtime.ports import PORT_RANGE_VARIABLE
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.support import drop_schemas, postgres_or_skip

# Free ports for the tests' services come from below Linux's default ephemeral range (32768 and
# up), which outgoing connections draw from, split between the xdist workers.
TEST_PORTS = range(20000, 32768)


def pytest_configure(config: pytest.Config) -> None:
    """Gives this worker its own slice of TEST_PORTS (unless SCFED_PORT_RANGE is already set),
    so no two workers, and no connection, take a port a test chose but has not bound yet."""
    if os.environ.get(PORT_RANGE_VARIABLE):
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = len(TEST_PORTS) // max(workers, 1)
    first = TEST_PORTS.start + int(worker) * size
    os.environ[PORT_RANGE_VARIABLE] = f"{first}-{first + size - 1}"


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
