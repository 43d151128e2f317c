"""The audit trail's cost per search, on SQLite, printed (not a test: timings vary by machine).

Two figures, because a search is audited in one of two ways:

- IDENT's Identify changes nothing else, so its audit record is a transaction of its own:
  Identify calls over gRPC are timed with the audit write and with it replaced by a no-op.
- IDENT's Search, the IAFIS master-file search and the SIB's state-file search add one row to
  the transaction that does the work: transactions that write one journal entry (as every
  received message does) are timed with and without one audit row beside it.

Run: python -m services.biometrics.bench.audit_cost [--calls N] [--gallery N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from scfed.ident.v1 import ident_pb2, ident_pb2_grpc

from ...federation import Agency
from ...runtime import audit, journal
from ...runtime.db import Database
from ...runtime.models import Direction, Outcome, RuntimeBase
from ...scenarios.subjects import SubjectMaker, enroll_in_ident
from ...testing.federation import DatabaseChoice, running_federation


async def _no_audit(*_args: Any, **_kwargs: Any) -> None:
    """The audit write, switched off."""


async def _timed(calls: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    """Seconds taken by each of `calls` sequential calls of `one`."""
    spent = []
    for i in range(calls):
        began = time.perf_counter()
        await one(i)
        spent.append(time.perf_counter() - began)
    return spent


def _line(name: str, on: list[float], off: list[float]) -> str:
    """One figure: median and mean per call with and without the audit, and the difference."""
    on_median, off_median = statistics.median(on), statistics.median(off)
    return (
        f"{name}: median {on_median * 1e3:.3f} ms with the audit, {off_median * 1e3:.3f} ms "
        f"without (mean {statistics.fmean(on) * 1e3:.3f} / {statistics.fmean(off) * 1e3:.3f}); "
        f"the audit costs {(on_median - off_median) * 1e3:.3f} ms per search "
        f"({(on_median / off_median - 1) * 100:+.1f}%)"
    )


async def identify_cost(tmp: Path, *, calls: int, gallery: int) -> str:
    """Identify with and without its own audit transaction, on a running federation."""
    maker = SubjectMaker()
    subjects = [maker.subject(f"AUDIT,BENCH{n}") for n in range(gallery)]
    async with running_federation(DatabaseChoice(kind="sqlite", tmp=tmp)) as fed:
        address = fed.addresses()[Agency.IDENT]
        for subject in subjects:
            await enroll_in_ident(fed.addresses(), subject, "VISA_OVERSTAY")
        probes = [s.capture() for s in subjects]
        async with grpc.aio.insecure_channel(address) as channel:
            stub = ident_pb2_grpc.IdentStub(channel)

            async def identify(i: int) -> object:
                request = ident_pb2.IdentifyRequest(tenprint=probes[i % len(probes)])
                return await stub.Identify(request)

            await _timed(50, identify)  # warm up
            on: list[float] = []
            off: list[float] = []
            real = audit.record_alone
            # Alternating rounds, so a drift of the machine weighs on both sides alike.
            for _ in range(4):
                on += await _timed(calls // 4, identify)
                audit.record_alone = _no_audit
                try:
                    off += await _timed(calls // 4, identify)
                finally:
                    audit.record_alone = real
    return _line(f"IDENT Identify over gRPC ({gallery} identities)", on, off)


async def in_transaction_cost(tmp: Path, *, calls: int) -> str:
    """A received message's transaction with and without one audit row beside its journal."""
    db = Database(f"sqlite+aiosqlite:///{tmp / 'audit_cost.db'}")
    await db.connect([RuntimeBase.metadata])
    try:

        async def work(i: int, *, audited: bool) -> None:
            async with db.session() as session:
                journal.record(
                    session,
                    message_id=f"M{i}",
                    tcn=f"T{i}",
                    tot="IDENT-SEARCH",
                    direction=Direction.RECEIVED,
                    peer="cjis_iafis",
                    outcome=Outcome.PROCESSED,
                )
                if audited:
                    audit.record(
                        session,
                        who="cjis_iafis",
                        rpc="Search",
                        tcn=f"T{i}",
                        purpose=audit.Purpose.BOOKING,
                        outcome=audit.AuditOutcome.NO_MATCH,
                    )

        async def with_audit(i: int) -> None:
            await work(i, audited=True)

        async def without_audit(i: int) -> None:
            await work(i, audited=False)

        await _timed(50, with_audit)  # warm up
        on: list[float] = []
        off: list[float] = []
        for _ in range(4):
            on += await _timed(calls // 4, with_audit)
            off += await _timed(calls // 4, without_audit)
    finally:
        await db.dispose()
    return _line("One row in the search's own transaction (SQLite)", on, off)


async def main(calls: int, gallery: int) -> None:
    """Prints both figures."""
    with tempfile.TemporaryDirectory() as tmp:
        print(await in_transaction_cost(Path(tmp), calls=calls))
        print(await identify_cost(Path(tmp), calls=calls, gallery=gallery))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="Timed calls per figure.")
    parser.add_argument("--gallery", type=int, default=200, help="Identities IDENT holds.")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.gallery))
