"""`scfed trace`: one booking's messages in order, across every service's journal."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc

from scfed.common.v1 import common_pb2, common_pb2_grpc

from ..federation import Agency
from ..runtime import journal
from ..runtime.db import Database
from ..runtime.tls import ChannelFactory, insecure_channels
from .offline import OfflineDatabases


async def trace_online(
    tcn: str, addresses: dict[str, str], *, channels: ChannelFactory = insecure_channels
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Asks every running service for its journal entries of `tcn`, dialling through
    `channels` (plaintext, or the operator's certificate).

    Also returns the services left out and why: one that serves no `Journal` (an external
    implementation need not) answers UNIMPLEMENTED, one that is not there UNAVAILABLE. Raises
    RuntimeError when no service answered at all.
    """
    entries: list[dict[str, Any]] = []
    left_out: dict[str, str] = {}
    for name, address in addresses.items():
        async with channels(name, address) as channel:
            stub = common_pb2_grpc.JournalStub(channel)
            try:
                page = await stub.GetJournal(common_pb2.JournalQuery(tcn=tcn), timeout=5)
            except grpc.aio.AioRpcError as exc:
                why = "serves no Journal" if exc.code() == grpc.StatusCode.UNIMPLEMENTED else ""
                left_out[name] = f"{address}: {exc.code().name} {why or exc.details()}".strip()
                continue
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
                    "trace_id": e.trace_id,
                }
            )
    if addresses and len(left_out) == len(addresses):
        reasons = "; ".join(f"{name} at {why}" for name, why in left_out.items())
        raise RuntimeError(f"no service's journal answered: {reasons}")
    return sorted(entries, key=lambda e: e["at"]), left_out


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
                "trace_id": e.trace_id or "",
            }
            for e in await journal.entries_for(db, tcn)
        ]

    per_agency = await databases.read_each(Agency, entries_of)
    return sorted((e for entries in per_agency.values() for e in entries), key=lambda e: e["at"])


def trace_ids(entries: list[dict[str, Any]]) -> list[str]:
    """The distributed trace ids the entries carry, in the order they first appear (one for
    a booking traced from its start; none with tracing off)."""
    return list(dict.fromkeys(e["trace_id"] for e in entries if e.get("trace_id")))
