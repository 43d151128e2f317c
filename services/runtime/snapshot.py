"""Snapshots: a running service's whole state as one JSON document, and loading one back.

The document names its format and version and the service it came from, and holds every row
of the tables a reset empties (the service's own and the runtime's outbox, inbox and journal),
generically from the SQLAlchemy metadata: each table as its column names and its rows, in
primary-key order, with bytes as base64 and times as ISO 8601.

The clock's anchor (`clock_epoch`) is not part of a snapshot, as a reset keeps it: agency time
is configuration, an accelerated clock's anchor is shared by replicas, and a manual clock only
moves forward. Nor is the audit trail (`audit`): its records are never deleted or replaced, so
a load leaves it as it is. A loaded snapshot's records keep the times they were taken at;
`taken_at` in the document says what the agency time was then.

Loading checks the whole document first (format, version, service, every table and column
known, every row the right length, every value of the column's kind), then empties the tables
and inserts the rows, parents before children, in one transaction: a document the database
refuses leaves everything as it was. A table the document leaves out is loaded empty. Once
committed, the provider rebuilds what it keeps in memory from the tables (`on_snapshot_loaded`:
the biometric indexes). Like a reset, a load is meant for a quiet federation.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import Column, Table, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from .control import empty_tables, service_tables
from .errors import InvalidArgument

if TYPE_CHECKING:
    from .server import Runtime, ServiceProvider

FORMAT = "scfed-snapshot"
FORMAT_VERSION = 1


class SnapshotReport(BaseModel):
    """What a snapshot holds or a load put in place: rows by table, and the time it took."""

    service: str
    rows: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class Snapshot:
    """A saved snapshot: the JSON document and what it holds."""

    document: bytes
    report: SnapshotReport


def _python_type(column: Column[Any]) -> type | None:
    """The Python type of a column's values; a TypeDecorator's is its storage type's."""
    storage = column.type
    if isinstance(storage, TypeDecorator):
        storage = storage.impl_instance
    try:
        kind: type = storage.python_type
    except NotImplementedError:
        return None
    return kind


def _encode(value: object) -> object:
    """A column value as JSON: bytes as base64, times as ISO 8601, enums as their value."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _decoder(table: Table, column: Column[Any]) -> Any:
    """A function from a JSON value back to the column's value; InvalidArgument names the
    table and column of a value that is not of the column's kind."""
    kind = _python_type(column)
    where = f"{table.name}.{column.name}"

    def refuse(value: object, what: str) -> InvalidArgument:
        return InvalidArgument(f"{where}: expected {what}, got {str(value)[:40]!r}")

    if kind is bytes:

        def decode_bytes(value: object) -> object:
            if value is None:
                return None
            try:
                return base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise refuse(value, "base64") from exc

        return decode_bytes
    if kind is datetime or kind is date:
        parse = datetime.fromisoformat if kind is datetime else date.fromisoformat

        def decode_time(value: object) -> object:
            if value is None:
                return None
            if not isinstance(value, str):
                raise refuse(value, "an ISO 8601 time")
            try:
                return parse(value)
            except ValueError as exc:
                raise refuse(value, "an ISO 8601 time") from exc

        return decode_time
    if kind in _PLAIN:
        wanted, what = _PLAIN[kind]

        def decode_plain(value: object) -> object:
            # bool is an int to Python, not to a column of numbers.
            if value is None or (isinstance(value, wanted) and not _bool_as_number(kind, value)):
                return value
            raise refuse(value, what)

        return decode_plain
    return lambda value: value


# Column types whose JSON values are checked as they are (JSON columns take any value).
_PLAIN: dict[type, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    bool: ((bool,), "true or false"),
}


def _bool_as_number(kind: type, value: object) -> bool:
    return kind is not bool and isinstance(value, bool)


async def save_snapshot(provider: ServiceProvider, runtime: Runtime) -> Snapshot:
    """Dumps every table of the service (the clock's anchor excepted) in one transaction."""
    started = time.perf_counter()
    tables: dict[str, dict[str, Any]] = {}
    async with runtime.db.session() as session:
        for table in service_tables(provider):
            columns = list(table.columns)
            order = list(table.primary_key.columns) or columns
            result = await session.execute(select(*columns).order_by(*order))
            tables[table.name] = {
                "columns": [c.name for c in columns],
                "rows": [[_encode(v) for v in row] for row in result],
            }
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "service": str(provider.name),
        "taken_at": runtime.clock.now().isoformat(),
        "tables": tables,
    }
    data = json.dumps(document, separators=(",", ":")).encode()
    report = SnapshotReport(
        service=provider.name,
        rows={name: len(t["rows"]) for name, t in tables.items()},
        seconds=round(time.perf_counter() - started, 4),
    )
    return Snapshot(document=data, report=report)


def _parse(provider: ServiceProvider, document: bytes | str) -> dict[Table, list[dict[str, Any]]]:
    """The rows a document holds, by table, checked and decoded; InvalidArgument names the
    first problem."""
    try:
        parsed = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"a snapshot is a JSON document: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
        raise InvalidArgument(f'not a snapshot: "format" is not "{FORMAT}"')
    if parsed.get("version") != FORMAT_VERSION:
        raise InvalidArgument(
            f"snapshot format version {parsed.get('version')!r} is not supported "
            f"(this service reads version {FORMAT_VERSION})"
        )
    if parsed.get("service") != provider.name:
        raise InvalidArgument(
            f"the snapshot is of service {parsed.get('service')!r}, not {str(provider.name)!r}"
        )
    given = parsed.get("tables")
    if not isinstance(given, dict):
        raise InvalidArgument('a snapshot holds its rows in "tables", an object by table name')
    known = {table.name: table for table in service_tables(provider)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidArgument(f"unknown table {unknown[0]!r} for {provider.name!s}")
    rows: dict[Table, list[dict[str, Any]]] = {}
    for name, content in given.items():
        table = known[name]
        if not isinstance(content, dict) or not isinstance(content.get("columns"), list):
            raise InvalidArgument(f"{name}: expected an object with columns and rows")
        names = content["columns"]
        if not all(isinstance(c, str) for c in names):
            raise InvalidArgument(f"{name}: column names are strings")
        for column_name in names:
            if column_name not in table.columns:
                raise InvalidArgument(f"unknown column {name}.{column_name}")
        decoders = [_decoder(table, table.columns[c]) for c in names]
        table_rows = content.get("rows")
        if not isinstance(table_rows, list):
            raise InvalidArgument(f"{name}: rows is a list")
        decoded: list[dict[str, Any]] = []
        for number, row in enumerate(table_rows):
            if not isinstance(row, list) or len(row) != len(names):
                raise InvalidArgument(
                    f"{name}: row {number} has not one value for each of {len(names)} columns"
                )
            decoded.append({c: d(v) for c, d, v in zip(names, decoders, row, strict=True)})
        rows[table] = decoded
    return rows


async def _restart_sequences(session: AsyncSession, tables: list[Table]) -> None:
    """PostgreSQL: moves each serial column's sequence past the ids just loaded (inserting an
    id does not advance it; SQLite takes the next rowid from the table itself)."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f'COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)'
            ),
            {"table": table.name, "column": column.name},
        )


async def load_snapshot(
    provider: ServiceProvider, runtime: Runtime, document: bytes | str
) -> SnapshotReport:
    """Replaces every table of the service with the snapshot's rows in one transaction, then
    lets the provider rebuild its in-memory state; InvalidArgument for a document it refuses,
    with nothing changed."""
    started = time.perf_counter()
    rows = _parse(provider, document)
    tables = list(service_tables(provider))
    async with runtime.db.session() as session:
        await empty_tables(session, provider)
        for table in tables:
            if rows.get(table):
                try:
                    await session.execute(insert(table), rows[table])
                except SQLAlchemyError as exc:
                    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
                    raise InvalidArgument(f"{table.name}: the rows do not load: {reason}") from exc
        if not runtime.db.is_sqlite:
            await _restart_sequences(session, tables)
    await provider.on_snapshot_loaded(runtime)
    return SnapshotReport(
        service=provider.name,
        rows={table.name: len(rows.get(table, [])) for table in tables},
        seconds=round(time.perf_counter() - started, 4),
    )
