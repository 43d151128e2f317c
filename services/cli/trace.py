"""`scfed trace`: one booking's messages in order, across every service's journal."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc

from scfed.common.v1 import common_pb2, common_pb2_grpc

from ..federation import Agency
from ..runtime import journal
from ..runtime.db import Database
from .offline import OfflineDatabases


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


async def trace_offline(tcn: str, databases: OfflineDatabases) -> list[dict[str, Any]]:
    """Reads `tcn`'s journal entries straight from the services' databases."""

    async def entries_of(agency: Agency, db: Database) -> list[dict[str, Any]]:
        return [
            {
                "service": agency,
                "at": e.at.isoformat(),
                "direction": e.direction,
                "tot": e.tot,
                "peer": e.peer,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in await journal.entries_for(db, tcn)
        ]

    per_agency = await databases.read_each(Agency, entries_of)
    return sorted((e for entries in per_agency.values() for e in entries), key=lambda e: e["at"])
