"""An in-process federation for integration tests: five real hosts on loopback, port 0."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.runtime.clock import Clock
from services.runtime.config import ServiceSettings
from services.runtime.server import ServiceHost
from services.scenarios import inprocess

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass
class DatabaseChoice:
    """Where the test services keep their data: SQLite files or PostgreSQL schemas."""

    kind: str
    tmp: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def settings_for(self, service: str) -> dict[str, Any]:
        """Database settings for one service (its own file or its own schema)."""
        if self.kind == "sqlite":
            return {"data_dir": self.tmp, "database_url": None}
        return {"database_url": POSTGRES_URL, "db_schema": self.schema(service)}

    def schema(self, service: str) -> str:
        """The PostgreSQL schema of one service in this test."""
        return f"t{self.run_id}_{service}"


def make_settings(service: str, db: DatabaseChoice, **overrides: Any) -> ServiceSettings:
    """Settings for one service on loopback port 0 with fast retries, in this test's database."""
    return inprocess.make_settings(service, db.settings_for(service), **overrides)


def make_host(
    service: str, db: DatabaseChoice, *, clock: Clock | None = None, **overrides: Any
) -> ServiceHost:
    """A host for one service (not started), in this test's database."""
    return inprocess.make_host(service, db.settings_for(service), clock=clock, **overrides)


class Federation(inprocess.Federation):
    """Five started hosts wired to each other, which a test may restart one by one."""

    async def restart(self, service: str, db: DatabaseChoice) -> None:
        """Replaces a stopped service with a fresh host on the same database, and rewires."""
        self.hosts[service] = make_host(service, db)
        await self.hosts[service].start()
        self.wire()


@asynccontextmanager
async def running_federation(
    db: DatabaseChoice, **overrides: dict[str, Any]
) -> AsyncIterator[Federation]:
    """Starts the five services in this test's database (settings per service in `overrides`,
    a "clock" key included), wires them, and stops them afterwards."""
    async with inprocess.running_federation(db.settings_for, Federation, **overrides) as fed:
        yield fed
