"""Database.connect's upgrade of an older version's tables: nullable columns added in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect

from services.runtime.db import SchemaOutdated, add_missing_columns


def _tables(*extra: Column[object]) -> MetaData:
    metadata = MetaData()
    Table("journal", metadata, Column("id", Integer, primary_key=True), *extra)
    return metadata


def test_missing_nullable_columns_are_added_once_and_rows_kept(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        _tables().create_all(conn)
        conn.exec_driver_sql("INSERT INTO journal (id) VALUES (1)")
    new = _tables(Column("trace_id", String(32), nullable=True))
    with engine.begin() as conn:
        assert add_missing_columns(conn, new, None) == ["journal.trace_id"]
        assert add_missing_columns(conn, new, None) == []
        columns = {c["name"]: c for c in inspect(conn).get_columns("journal")}
        assert columns["trace_id"]["nullable"] is True
        assert conn.exec_driver_sql("SELECT id, trace_id FROM journal").all() == [(1, None)]


def test_a_missing_column_that_may_not_be_null_is_refused_by_name(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        _tables().create_all(conn)
    new = _tables(Column("required", String(8), nullable=False))
    with (
        engine.begin() as conn,
        pytest.raises(SchemaOutdated, match="journal lacks column required"),
    ):
        add_missing_columns(conn, new, None)
