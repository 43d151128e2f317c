"""Each service's own database: SQLite file by default, PostgreSQL (a schema of its own) by URL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, String, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Converts an aware datetime to naive UTC for storage."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Marks a stored naive UTC value as UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum stored as its plain string value in a VARCHAR, so stored rows read the same as
    the bare strings written before; a value outside the enum is refused on write and on read.

    With `empty_is_none`, None is stored as "" (for a column where "" always meant "none").
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int, *, empty_is_none: bool = False) -> None:
        super().__init__(length)
        self.enum = enum
        self.empty_is_none = empty_is_none

    @property
    def python_type(self) -> type[E]:
        """The enum the column holds."""
        return self.enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        """The member's string value; a string that is no member is refused."""
        if value is None:
            return "" if self.empty_is_none else None
        return str(self.enum(value).value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        """The member a stored string names."""
        if value is None or (self.empty_is_none and value == ""):
            return None
        return self.enum(value)


class Database:
    """An async engine and session factory for one service's database."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine; `connect()` must have been awaited."""
        if self._engine is None:
            raise RuntimeError("database not connected")
        return self._engine

    async def connect(self, metadatas: Sequence[MetaData]) -> None:
        """Creates the engine, the schema and the tables."""
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection per process: SQLite has one writer, and queueing for it in the
            # pool is cheaper and clearer than "database is locked" retries.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=120)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
            if self.schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with engine.begin() as conn:
            if not self.is_sqlite:
                # Replicas starting together would race on CREATE SCHEMA / CREATE TABLE (both
                # see a table missing, one fails on the catalog's unique index): one at a time,
                # under a transaction-scoped advisory lock keyed by the schema.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": schema_lock_key(self.schema or "public")},
                )
            if self.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            for metadata in metadatas:
                await conn.run_sync(metadata.create_all)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        if self._sessions is None:
            raise RuntimeError("database not connected")
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Closes every connection."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None

    def insert_ignoring_conflicts(self, table: Any, index_elements: Sequence[str]) -> Insert:
        """An INSERT that silently skips rows whose key already exists."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))


def schema_lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory-lock key for creating one schema's tables."""
    digest = hashlib.sha256(f"scfed-schema:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
