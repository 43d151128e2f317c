"""`scfed bench federation`: how fast the federation answers a booking, and where the time goes.

The bench starts the five services (LocalFederation, the demo's clocks), seeds the demo's world
and runs three phases:

- warm-up: a few bookings, not measured (connections, caches, the HNSW index's first pages);
- solo: bookings one at a time on the otherwise idle federation, each awaited until its final
  response: the latency one booking sees;
- load: N bookings offered at `rate` per second (or with `in_flight` at once), awaited until
  every one is answered and every outbox is idle.

Everything it reports comes from the services' own records, read over their HTTP edges after
each phase: every journal entry of the phase (`GET /v1/journal`), and each process's counters
(`GET /v1/replica`: CPU seconds, database commits and statements, delivery calls).

- A booking's latency runs from the SIB journaling its receipt to the SIB receiving its last
  response (the SRE, and the IDR or joint IDR/IAR when one is due; an ERRT for a refusal).
- The modeled waits are LESC's desk: an IAQ that the desk routes to an analyst or a VTC
  interview is held for the handling time on LESC's (fast) clock. That hold, from LESC receiving
  the IAQ to LESC writing the IAR, is reported apart and subtracted from the machine latency.
  The field office's detainer decision comes after the booking's final response, so it is
  only in the IAR -> I-247 hop.
- A hop runs from one agency receiving a message to the next agency receiving the reply; the
  outbox wait of a message runs from its sender writing it to the outbox (in the transaction
  that caused it) to the receiver receiving it.
- The raw gRPC echo is measured in the same run: an aio server in a process of its own
  answering empty unary calls, driven by as many calls in flight as the load phase had
  bookings; `rpc_ratio` is the federation's inter-agency calls per second over the echo's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import httpx

from ..federation import Agency
from ..runtime.envelope import MessageType
from ..runtime.models import Direction, Outcome
from ..sib.lea_client import LeaKeys
from ..world.world import World, build_world
from .demo import Progress, seeded_federation, submit_bookings, wait_quiet
from .launcher import DEFAULT_READY_TIMEOUT_S, LocalFederation

# The statement kinds per service the text report shows (the JSON has them all).
TOP_KINDS = 6

# How long one solo booking may take, and how often the bench looks whether it is done.
SOLO_TIMEOUT_S = 30.0
SOLO_POLL_S = 0.02

# The SIB's responses that can end a booking.
FINAL_TOTS = frozenset(
    {MessageType.SRE, MessageType.ERRT, MessageType.NO_MATCH_IDR, MessageType.IDR_IAR}
)

# Each hop: (name, agency and TOT received first, agency and TOT received last).
HOPS: tuple[tuple[str, tuple[Agency, frozenset[str]], tuple[Agency, frozenset[str]]], ...] = (
    (
        "car_to_sre",
        (Agency.CJIS_IAFIS, frozenset({MessageType.CAR, MessageType.CPI})),
        (Agency.SIB, frozenset({MessageType.SRE})),
    ),
    (
        "search_to_idr",
        (Agency.IDENT, frozenset({MessageType.IDENT_SEARCH})),
        (Agency.CJIS_IAFIS, frozenset({MessageType.IDR})),
    ),
    (
        "iaq_to_iar",
        (Agency.LESC, frozenset({MessageType.IAQ})),
        (Agency.CJIS_IAFIS, frozenset({MessageType.IAR})),
    ),
    (
        "iar_to_i247",
        (Agency.ICE_FIELD, frozenset({MessageType.IAR_COPY})),
        (Agency.SIB, frozenset({MessageType.I247})),
    ),
)


@dataclass(frozen=True)
class BenchOptions:
    """What `scfed bench federation` runs."""

    bookings: int
    seed: int = 1
    database_url: str | None = None
    # Bookings offered per second in the load phase; None: `in_flight` at once, as fast as
    # the SIB takes them.
    rate: float | None = None
    in_flight: int = 16
    warmup: int = 20
    solo: int = 20
    tls: bool = True
    timeout_s: float = 600.0
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    echo_s: float = 3.0


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50, p99 and max of `values` (milliseconds, rounded), with their count."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 1)}


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000.0


@dataclass(frozen=True)
class Entry:
    """One journal entry as the bench reads it."""

    service: str
    message_id: str
    tcn: str
    tot: str
    direction: Direction
    outcome: Outcome
    at: datetime
    detail: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        """An entry as `GET /v1/journal` serves it."""
        return cls(
            service=str(data["service"]),
            message_id=str(data["message_id"]),
            tcn=str(data["tcn"]),
            tot=str(data["tot"]),
            direction=Direction(data["direction"]),
            outcome=Outcome(data["outcome"]),
            at=datetime.fromisoformat(str(data["at"])),
            detail=str(data.get("detail", "")),
        )


# A received message that was taken in: processed (a message) or accepted (an LEA's booking).
_TAKEN = frozenset({Outcome.PROCESSED, Outcome.ACCEPTED})


def _first(entries: list[Entry], service: str, tots: frozenset[str]) -> datetime | None:
    times = [
        e.at
        for e in entries
        if e.service == service
        and e.direction == Direction.RECEIVED
        and e.outcome in _TAKEN
        and e.tot in tots
    ]
    return min(times) if times else None


def analyse(entries: Iterable[Entry], tcns: Iterable[str]) -> dict[str, Any]:
    """Latency per booking (total, modeled, machine), per hop and outbox wait, from the journal
    entries of every service. Bookings without a final response are counted as unanswered."""
    by_tcn: dict[str, list[Entry]] = defaultdict(list)
    received: dict[str, Entry] = {}
    sent: list[Entry] = []
    for e in entries:
        by_tcn[e.tcn].append(e)
        if e.direction == Direction.RECEIVED:
            received.setdefault(e.message_id, e)
        elif e.outcome == Outcome.DELIVERED:
            sent.append(e)
    total: list[float] = []
    machine: list[float] = []
    modeled: list[float] = []
    hops: dict[str, list[float]] = defaultdict(list)
    unanswered = 0
    first_accepted: datetime | None = None
    last_final: datetime | None = None
    for tcn in tcns:
        flow = by_tcn.get(tcn, [])
        accepted = _first(flow, Agency.SIB, frozenset({MessageType.BOOKING}))
        finals = [
            e.at
            for e in flow
            if e.service == Agency.SIB
            and e.direction == Direction.RECEIVED
            and e.outcome == Outcome.PROCESSED
            and e.tot in FINAL_TOTS
        ]
        if accepted is None or not finals:
            unanswered += 1
            continue
        held = _desk_hold_ms(flow)
        whole = _ms(max(finals), accepted)
        first_accepted = min(accepted, first_accepted or accepted)
        last_final = max(max(finals), last_final or max(finals))
        total.append(whole)
        modeled.append(held)
        machine.append(max(0.0, whole - held))
        for name, (first_at, first_tots), (last_at, last_tots) in HOPS:
            start, end = _first(flow, first_at, first_tots), _first(flow, last_at, last_tots)
            if start is not None and end is not None:
                span = _ms(end, start)
                hops[name].append(span - held if name == "iaq_to_iar" else span)
    waits: dict[str, list[float]] = defaultdict(list)
    for e in sent:
        got = received.get(e.message_id)
        if got is not None:
            waits[e.tot].append(_ms(got.at, e.at))
    return {
        "answered": len(total),
        # From the first booking accepted to the last final response.
        "span_s": _ms(last_final, first_accepted) / 1000.0
        if first_accepted and last_final
        else 0.0,
        "unanswered": unanswered,
        "latency_ms": percentiles(total),
        "machine_latency_ms": percentiles(machine),
        "modeled_wait_ms": percentiles(v for v in modeled if v > 0),
        "hops_ms": {name: percentiles(values) for name, values in sorted(hops.items())},
        "outbox_wait_ms": {tot: percentiles(values) for tot, values in sorted(waits.items())},
    }


def _desk_hold_ms(flow: list[Entry]) -> float:
    """How long LESC's desk held the booking's IAQ for an analyst or a VTC interview (0 when
    the determination was automated, or there was no IAQ)."""
    iaq = [
        e
        for e in flow
        if e.service == Agency.LESC
        and e.direction == Direction.RECEIVED
        and e.outcome == Outcome.PROCESSED
        and e.tot == MessageType.IAQ
    ]
    if not iaq or "route=automated" in iaq[0].detail:
        return 0.0
    answered = [
        e.at
        for e in flow
        if e.service == Agency.LESC and e.direction == Direction.SENT and e.tot == MessageType.IAR
    ]
    return max(0.0, _ms(min(answered), iaq[0].at)) if answered else 0.0


class Edges:
    """The five services' HTTP edges, read for journals and counters."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str]) -> None:
        self._client = client
        self.urls = dict(urls)
        self._marks = dict.fromkeys(self.urls, 0)

    async def counters(self) -> dict[str, dict[str, float]]:
        """Each service's `/v1/replica` counters."""
        out = {}
        for name, url in self.urls.items():
            r = await self._client.get(f"{url}/v1/replica")
            r.raise_for_status()
            out[name] = r.json()
        return out

    async def journal_since_mark(self) -> list[Entry]:
        """Every journal entry written since the last call (the first call reads them all)."""
        entries: list[Entry] = []
        for name, url in self.urls.items():
            while True:
                r = await self._client.get(
                    f"{url}/v1/journal", params={"after": self._marks[name], "limit": 5000}
                )
                r.raise_for_status()
                page = r.json()
                if not page:
                    break
                self._marks[name] = int(page[-1]["id"])
                entries.extend(Entry.from_json(item) for item in page)
        return entries


def _delta(
    after: Mapping[str, Mapping[str, float]], before: Mapping[str, Mapping[str, float]], key: str
) -> dict[str, float]:
    return {name: float(after[name][key]) - float(before[name][key]) for name in after}


def _kinds_per_booking(
    after: Mapping[str, Mapping[str, Any]], before: Mapping[str, Mapping[str, Any]], n: int
) -> dict[str, dict[str, float]]:
    """Each service's statements by kind per booking, most frequent first."""
    out: dict[str, dict[str, float]] = {}
    for name in after:
        now = after[name].get("db_statements_by_kind", {})
        then = before[name].get("db_statements_by_kind", {})
        deltas = {kind: count - then.get(kind, 0) for kind, count in now.items()}
        out[name] = {
            kind: round(d / n, 2)
            for kind, d in sorted(deltas.items(), key=lambda item: -item[1])
            if d > 0
        }
    return out


def _per_booking(values: Mapping[str, float], n: int, digits: int = 4) -> dict[str, float]:
    out = {name: round(v / n, digits) for name, v in values.items()}
    out["total"] = round(sum(values.values()) / n, digits)
    return out


def _slice(world: World, start: int, stop: int) -> World:
    return dataclasses.replace(world, bookings=world.bookings[start:stop])


async def _solo(
    client: httpx.AsyncClient,
    world: World,
    progress: Progress,
    quiet: Callable[[int], Awaitable[bool]],
) -> list[str]:
    """Posts each booking alone on the idle federation: the next one goes once this one is
    answered and every outbox is idle again (`quiet(k)`: k solo bookings final, outboxes empty).
    The latency comes from the journals, so how often `quiet` looks changes only the load it
    puts on the SIB, not what is measured."""
    tcns = []
    for i in range(len(world.bookings)):
        posted, refused = await submit_bookings(client, _slice(world, i, i + 1), 1, _no_progress)
        if refused:
            raise RuntimeError(f"solo booking refused: {refused[0]}")
        if not await quiet(i + 1):
            raise TimeoutError(f"solo booking {posted[0]} not answered in time")
        tcns.append(posted[0])
        progress("solo", i + 1, len(world.bookings))
    return tcns


_ECHO_SERVER = """
import asyncio, grpc

async def echo(request, context):
    return request

async def main():
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


async def echo_rpc_per_s(seconds: float, in_flight: int) -> float:
    """Calls per second of a raw gRPC aio unary echo: a server in its own process, this
    process calling with `in_flight` calls at once for `seconds`."""
    server = subprocess.Popen(
        [sys.executable, "-c", _ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(await asyncio.to_thread(server.stdout.readline))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/bench.Echo/Call")
            await call(b"warm", timeout=10)
            done = 0
            stop = time.monotonic() + seconds

            async def caller() -> None:
                nonlocal done
                while time.monotonic() < stop:
                    await call(b"x" * 64, timeout=10)
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(caller() for _ in range(max(1, in_flight))))
            return done / (time.monotonic() - started)
    finally:
        server.kill()
        server.wait()


async def run_federation_bench(
    options: BenchOptions, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Runs the bench and returns its report."""
    if options.bookings < 1:
        raise ValueError("--bookings must be at least 1")
    warm, solo = options.warmup, options.solo
    world = build_world(
        options.seed, warm + solo + options.bookings, rebook_gap=max(32, 2 * options.in_flight)
    )
    data_dir = Path(tempfile.mkdtemp(prefix="scfed-bench-"))
    prefix = f"scfed_bench_{uuid.uuid4().hex[:8]}"
    fed = LocalFederation(
        data_dir=data_dir,
        database_url=options.database_url,
        schema_prefix=prefix,
        speeds={Agency.ICE_FIELD: 1_000_000.0},
        extra_env=world.lesc_staffing.settings(),
        ready_timeout=options.ready_timeout_s,
        tls=options.tls,
    )
    async with seeded_federation(fed, world, progress) as seeded:
        urls = {name: svc.http_url for name, svc in fed.services.items()}
        async with (
            httpx.AsyncClient(timeout=60.0) as reader,
            httpx.AsyncClient(
                base_url=urls[Agency.SIB],
                timeout=60.0,
                limits=httpx.Limits(max_connections=options.in_flight * 2),
                auth=LeaKeys(seeded.lea_keys),
            ) as client,
        ):
            edges = Edges(reader, urls)
            await submit_bookings(client, _slice(world, 0, warm), 4, _no_progress)
            await wait_quiet(client, fed, warm, options.timeout_s, _no_progress)
            await edges.journal_since_mark()

            solo_tcns = await _solo(
                client,
                _slice(world, warm, warm + solo),
                progress,
                lambda k: wait_quiet(
                    client, fed, warm + k, SOLO_TIMEOUT_S, _no_progress, poll_s=SOLO_POLL_S
                ),
            )
            solo_report = analyse(await edges.journal_since_mark(), solo_tcns)

            load = _slice(world, warm + solo, len(world.bookings))
            before = await edges.counters()
            bench_cpu = time.process_time()
            started = time.monotonic()
            tcns, refused = await submit_bookings(
                client, load, options.in_flight, progress, options.rate
            )
            # Looking seldom: the SIB's summary reads every booking, a cost the bench would
            # otherwise add to the services' own.
            quiet = await wait_quiet(
                client, fed, warm + solo + len(tcns), options.timeout_s, progress, poll_s=1.0
            )
            waited = time.monotonic() - started
            bench_cpu = time.process_time() - bench_cpu
            after = await edges.counters()
            load_report = analyse(await edges.journal_since_mark(), tcns)
    # With the federation stopped, so that the echo has the machine to itself.
    progress("echo", 0, 1)
    echo = await echo_rpc_per_s(options.echo_s, options.in_flight * 4)
    progress("echo", 1, 1)

    n = max(1, len(tcns))
    elapsed = load_report.pop("span_s") or waited
    solo_report.pop("span_s")
    calls = _delta(after, before, "delivery_calls")
    federation_rpc_per_s = sum(calls.values()) / elapsed if elapsed else 0.0
    return {
        "database": "postgresql" if options.database_url else "sqlite",
        "tls": options.tls,
        "seed": options.seed,
        "bookings": len(tcns),
        "refused_at_edge": len(refused),
        "offered": {"rate_per_s": options.rate, "in_flight": options.in_flight},
        "quiet": quiet,
        "elapsed_s": round(elapsed, 2),
        "bookings_per_s": round(len(tcns) / elapsed, 1) if elapsed else 0.0,
        "solo": {
            k: solo_report[k]
            for k in ("answered", "latency_ms", "machine_latency_ms", "hops_ms", "outbox_wait_ms")
        },
        **load_report,
        "rpc_per_booking": _per_booking(calls, n, 2),
        "db_commits_per_booking": _per_booking(_delta(after, before, "db_commits"), n, 2),
        "db_statements_per_booking": _per_booking(_delta(after, before, "db_statements"), n, 1),
        "db_statements_by_kind_per_booking": _kinds_per_booking(after, before, n),
        "cpu_s_per_booking": {
            **_per_booking(_delta(after, before, "cpu_s"), n),
            "bench_client": round(bench_cpu / n, 4),
        },
        "federation_rpc_per_s": round(federation_rpc_per_s, 1),
        "echo_rpc_per_s": round(echo, 1),
        "rpc_ratio": round(federation_rpc_per_s / echo, 3) if echo else 0.0,
        "cores": os.cpu_count(),
    }


def render_federation_bench(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""

    def pct(p: Mapping[str, float]) -> str:
        return f"p50 {p['p50']:g} ms, p99 {p['p99']:g} ms, max {p['max']:g} ms (n={p['n']})"

    offered = report["offered"]
    how = (
        f"{offered['rate_per_s']:g}/s offered"
        if offered["rate_per_s"]
        else f"{offered['in_flight']} in flight"
    )
    lines = [
        f"federation bench: {report['bookings']} bookings on {report['database']} "
        f"(TLS {'on' if report['tls'] else 'off'}, {how}, {report['cores']} cores)",
        f"  throughput        {report['bookings_per_s']:g} bookings/s over "
        f"{report['elapsed_s']:g} s{'' if report['quiet'] else ' (NOT quiet at the end)'}",
        f"  solo latency      {pct(report['solo']['machine_latency_ms'])}",
        "  solo hops (p50):  "
        + ", ".join(f"{name} {p['p50']:g} ms" for name, p in report["solo"]["hops_ms"].items()),
        f"  machine latency   {pct(report['machine_latency_ms'])}",
        f"  modeled waits     {pct(report['modeled_wait_ms'])} (LESC desk, subtracted)",
        f"  unanswered        {report['unanswered']}, "
        f"refused at the edge {report['refused_at_edge']}",
        "  hops:",
        *(f"    {name:<16} {pct(p)}" for name, p in report["hops_ms"].items()),
        "  outbox wait (written -> received), by message:",
        *(f"    {tot:<16} {pct(p)}" for tot, p in report["outbox_wait_ms"].items()),
        f"  per booking       {report['rpc_per_booking']['total']:g} RPCs, "
        f"{report['db_commits_per_booking']['total']:g} commits, "
        f"{report['db_statements_per_booking']['total']:g} statements, "
        f"{report['cpu_s_per_booking']['total'] * 1000:.1f} ms CPU in the services",
        "  CPU ms per booking: "
        + ", ".join(
            f"{name} {v * 1000:.1f}"
            for name, v in report["cpu_s_per_booking"].items()
            if name != "total"
        ),
        "  statements per booking, the most frequent kinds:",
        *(
            f"    {name:<16} "
            + ", ".join(f"{kind} {v:g}" for kind, v in list(kinds.items())[:TOP_KINDS])
            for name, kinds in report.get("db_statements_by_kind_per_booking", {}).items()
            if kinds
        ),
        f"  gRPC              federation {report['federation_rpc_per_s']:g} calls/s, raw echo "
        f"{report['echo_rpc_per_s']:g} calls/s, ratio {report['rpc_ratio']:g}",
    ]
    return "\n".join(lines)
