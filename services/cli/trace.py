"""`scfed trace`: one booking's messages in order, across every service's journal."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import grpc

from scfed.common.v1 import common_pb2, common_pb2_grpc
from services.runtime import journal, routes
from services.runtime.db import Database


async def trace_online(tcn: str, addresses: dict[str, str]) -> list[dict[str, Any]]:
    """Asks every running service for its journal entries of `tcn`."""
    entries: list[dict[str, Any]] = []
    for name, address in addresses.items():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = common_pb2_grpc.JournalStub(channel)
            try:
                page = await stub.GetJournal(common_pb2.JournalQuery(tcn=tcn), timeout=5)
            except grpc.aio.AioRpcError as exc:
                raise RuntimeError(
                    f"{name} at {address} did not answer: {exc.code().name} {exc.details()}"
                ) from exc
        for e in page.entries:
            entries.append(
                {
                    "service": e.service,
                    "at": e.at.ToDatetime(tzinfo=UTC).isoformat(),
                    "direction": e.direction,
                    "tot": e.tot,
                    "peer": e.peer,
                    "outcome": e.outcome,
                    "detail": e.detail,
                }
            )
    return sorted(entries, key=lambda e: e["at"])


async def trace_offline(
    tcn: str, *, data_dir: Path | None, database_url: str | None, schema_prefix: str
) -> list[dict[str, Any]]:
    """Reads `tcn`'s journal entries straight from the services' databases."""
    entries: list[dict[str, Any]] = []
    for name in routes.SERVICES:
        if database_url:
            db = Database(database_url, schema=f"{schema_prefix}_{name}")
        else:
            assert data_dir is not None
            path = data_dir / f"{name}.db"
            if not path.exists():
                raise FileNotFoundError(f"no database for {name} at {path}")
            db = Database(f"sqlite+aiosqlite:///{path}")
        await db.connect([])
        try:
            for e in await journal.entries_for(db, tcn):
                entries.append(
                    {
                        "service": name,
                        "at": e.at.isoformat(),
                        "direction": e.direction,
                        "tot": e.tot,
                        "peer": e.peer,
                        "outcome": e.outcome,
                        "detail": e.detail,
                    }
                )
        finally:
            await db.dispose()
    return sorted(entries, key=lambda e: e["at"])
