"""Each service's own database: SQLite file by default, PostgreSQL (a schema of its own) by URL."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, MetaData, String, event, exc, inspect, make_url, text
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

log = logging.getLogger(__name__)


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


class DatabaseUnavailable(Exception):
    """The service's database cannot be reached (or is not connected yet): a 503 at the HTTP
    edge and UNAVAILABLE at the gRPC edge, never a traceback per request."""


# Errors that mean "the database does not answer", not "this request is wrong": connection
# refused or lost, a connect or pool timeout, a file SQLite cannot open.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def is_unavailable(error: BaseException) -> bool:
    """True when `error` says the database cannot be reached, rather than a bad request."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _UNAVAILABLE_ERRORS) or (
        isinstance(error, OSError) and error.errno is not None
    )


def describe_cause(error: BaseException) -> str:
    """One line on why the database did not answer, without its traceback."""
    inner = getattr(error, "orig", None) or error
    text_ = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    if isinstance(inner, TimeoutError) and not text_:
        return "no answer (timed out)"
    return f"{type(inner).__name__}: {text_}" if text_ else type(inner).__name__


class Database:
    """An async engine and session factory for one service's database."""

    def __init__(
        self, url: str, *, schema: str | None = None, connect_timeout_s: float = 5.0
    ) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        self.connect_timeout_s = connect_timeout_s
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        # Awaited before each transaction begins: the slow_db fault rules (runtime/faults.py).
        self.before_transaction: Callable[[], Awaitable[None]] | None = None
        # Commits and statements this process made, for `scfed bench federation`.
        self.commits = 0
        self.statements = 0
        # The same statements by kind ("SELECT bookings", "INSERT journal", statement_kind).
        self.statement_kinds: Counter[str] = Counter()

    @property
    def target(self) -> str:
        """Where the database is, for a log line: host:port/name or the SQLite file, never
        the password."""
        url = make_url(self.url)
        if self.is_sqlite:
            return url.database or ":memory:"
        port = f":{url.port}" if url.port else ""
        return f"{url.host or 'localhost'}{port}/{url.database or ''}"

    @property
    def engine(self) -> AsyncEngine:
        """The engine; `connect()` must have been awaited."""
        if self._engine is None:
            raise DatabaseUnavailable("database not connected yet")
        return self._engine

    async def connect(self, metadatas: Sequence[MetaData]) -> None:
        """Creates the engine, the schema and the tables; on failure nothing is left open."""
        try:
            await self._connect(metadatas)
        except BaseException:
            await self.dispose()
            raise

    async def _connect(self, metadatas: Sequence[MetaData]) -> None:
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
            # asyncpg waits 60 s for a server that accepts and never answers: say so sooner.
            connect_args: dict[str, Any] = {"timeout": self.connect_timeout_s}
            if self.schema:
                connect_args["server_settings"] = {"search_path": self.schema}
            kwargs["connect_args"] = connect_args
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "commit", self._count_commit)
        event.listen(engine.sync_engine, "before_cursor_execute", self._count_statement)
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
                added = await conn.run_sync(add_missing_columns, metadata, self.schema)
                if added:
                    log.info("%s: added columns %s", self.target, ", ".join(added))

    def _count_commit(self, _conn: Any) -> None:
        self.commits += 1

    def _count_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        self.statement_kinds[statement_kind(statement)] += 1

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        if self._sessions is None:
            raise DatabaseUnavailable("database not connected yet")
        if self.before_transaction is not None:
            await self.before_transaction()
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        return await self.check() is None

    async def check(self) -> str | None:
        """None when the database answers a trivial query in time; otherwise why not."""
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            return f"no answer within {self.connect_timeout_s:g}s"
        except Exception as error:
            return describe_cause(error)
        return None

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


class SchemaOutdated(RuntimeError):
    """A table of an older version lacks a column that cannot be added in place."""


def add_missing_columns(conn: Connection, metadata: MetaData, schema: str | None) -> list[str]:
    """Adds to the existing tables of `metadata` the nullable columns a database created by an
    older version lacks (`create_all` makes missing tables, never missing columns); returns
    them as "table.column". A missing column that may not be null is SchemaOutdated: rows
    already there would have no value for it. Runs in the connecting transaction, under its
    advisory lock on PostgreSQL, so replicas starting together add each column once."""
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    added: list[str] = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name, schema=schema)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise SchemaOutdated(
                    f"table {table.name} lacks column {column.name}, which its existing rows "
                    "cannot do without: recreate the database, or load a snapshot into a new one"
                )
            kind = column.type.compile(dialect=conn.dialect)
            where = f"{preparer.quote_schema(schema)}." if schema else ""
            conn.execute(
                text(
                    f"ALTER TABLE {where}{preparer.quote(table.name)} "
                    f"ADD COLUMN {preparer.quote(column.name)} {kind}"
                )
            )
            added.append(f"{table.name}.{column.name}")
    return added


_VERB = re.compile(r"\s*(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|WITH|[A-Z]+)", re.IGNORECASE)
_TABLE = re.compile(r'\bFROM\s+"?(?:\w+"?\.)?"?(\w+)', re.IGNORECASE)
_TARGET = re.compile(r'\s*"?(?:\w+"?\.)?"?(\w+)')


@functools.lru_cache(maxsize=1024)
def statement_kind(statement: str) -> str:
    """A statement's verb and first table, such as "SELECT bookings" or "UPDATE outbox"
    (the verb alone when it names no table)."""
    verb_match = _VERB.match(statement)
    if verb_match is None:
        return "OTHER"
    verb = " ".join(verb_match.group(1).upper().split())
    if verb in ("INSERT INTO", "UPDATE", "DELETE FROM"):
        table = _TARGET.match(statement, verb_match.end())
    else:
        table = _TABLE.search(statement, verb_match.end())
    word = verb.split()[0]
    return f"{word} {table.group(1)}" if table else word


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
