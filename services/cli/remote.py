"""`scfed demo --sib-url`: drive a federation that already runs (compose, Kubernetes, `scfed up`).

Nothing is started or stopped here. The world is seeded through the services' gRPC edges
(unless told not to), bookings go in through the SIB's agency edge, each booking is awaited
until its final response, and the counts reported are the difference between each service's
counters (journal counts, IDENT's stats, the SIB's summary) before and after the run, so a
federation that already holds earlier bookings reports only this run's. Removal cases are not
stepped: that needs the field offices' fast clock, which only a federation the demo starts has.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
import httpx

from scfed.sib.v1 import sib_pb2_grpc

from ..federation import Agency
from ..runtime.journal import counts_from_json
from ..runtime.models import OutboxStatus
from ..runtime.tls import ChannelFactory, insecure_channels
from ..sib.lea_client import LeaKeys, issue_lea_keys
from ..sib.models import FINISHED, BookingStatus
from ..world.rollout import PLAN_PHASES
from ..world.seeding import seed_world
from ..world.world import World, build_world
from .demo import (
    JOURNAL_COUNTS,
    BookingFormat,
    Progress,
    consistency,
    crossed_ident,
    read_answer_files,
    submit_bookings,
    unchecked,
)


def sample_tcn(tcns: list[str], views: dict[str, dict[str, Any]]) -> str:
    """The booking to suggest tracing: the first whose answers show it crossed IDENT (under the
    rollout plan many bookings get criminal history only), else the first."""
    for tcn in tcns:
        if crossed_ident(views.get(tcn, {})):
            return tcn
    return tcns[0] if tcns else ""


@dataclass
class RemoteDemoOptions:
    """What `scfed demo --sib-url` was asked to do."""

    sib_url: str
    # HTTP edges of the other services (NAME -> URL); those missing or unreachable are left out
    # of the counts, and the result says which.
    urls: dict[str, str] = field(default_factory=dict)
    # gRPC addresses for seeding the world (every service's, when seeding).
    addresses: dict[str, str] = field(default_factory=dict)
    bookings: int = 50
    seed: int = 1
    seed_world: bool = True
    concurrency: int = 16
    rate: float | None = None
    timeout_s: float = 600.0
    # Agencies someone else runs: seeded at their gRPC address where they implement the
    # seeding RPCs, but no HTTP edge of theirs is read (ours may still run on its port).
    external: frozenset[str] = frozenset()
    # How the seeding dials the services: plaintext, or with the operator's certificate.
    channels: ChannelFactory = insecure_channels
    # The world under the national rollout plan (as `scfed demo` and `scfed seed`).
    rollout: bool = True
    # JSON bookings, or EBTS files to POST /v1/transactions with every answer read back as one.
    format: BookingFormat = BookingFormat.JSON


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    r = await client.get(url)
    r.raise_for_status()
    return r.json()


async def _snapshot(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, Any]:
    """Every counter the summary needs, from each reachable service's HTTP edge."""
    snap: dict[str, Any] = {"unreachable": []}
    for name, url in urls.items():
        try:
            snap[f"journal:{name}"] = await _get_json(client, f"{url}/v1/journal-counts")
            snap[f"outbox:{name}"] = await _get_json(client, f"{url}/v1/outbox")
            if name == Agency.SIB:
                snap["summary"] = await _get_json(client, f"{url}/v1/bookings-summary")
            if name == Agency.IDENT:
                snap["ident"] = await _get_json(client, f"{url}/v1/stats")
        except httpx.HTTPError as exc:
            if name == Agency.SIB:
                raise RuntimeError(f"the SIB's edge at {url} does not answer: {exc}") from exc
            snap["unreachable"].append(name)
    return snap


def _delta(before: dict[str, Any], after: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """This run's counts: after minus before, for the services reachable both times."""
    reachable = [
        name
        for name in urls
        if name not in before["unreachable"] and name not in after["unreachable"]
    ]
    result: dict[str, Any] = {"counted_services": reachable}
    for name, keys in JOURNAL_COUNTS.items():
        for label, key in keys.items():
            if name in reachable:
                was = counts_from_json(before[f"journal:{name}"]).get(key, 0)
                result[label] = counts_from_json(after[f"journal:{name}"]).get(key, 0) - was
            else:
                result[label] = None
    if Agency.IDENT in reachable:
        for label, stat in (("ident_searches", "searches"), ("ident_matches", "matches")):
            result[label] = int(after["ident"][stat]) - int(before["ident"][stat])
    else:
        result["ident_searches"] = result["ident_matches"] = None
    b, a = before["summary"], after["summary"]
    result["relayed_to_lea"] = a["relayed_to_lea"] - b["relayed_to_lea"]
    result["not_relayed"] = a["not_relayed"] - b["not_relayed"]
    result["detainers"] = {k: a["detainers"][k] - b["detainers"].get(k, 0) for k in a["detainers"]}
    dead = OutboxStatus.DEAD
    dead_before = sum(int(before[f"outbox:{n}"].get(dead, 0)) for n in reachable)
    dead_after = sum(int(after[f"outbox:{n}"].get(dead, 0)) for n in reachable)
    result["dead_letters"] = dead_after - dead_before
    return result


async def _outboxes_busy(client: httpx.AsyncClient, urls: dict[str, str]) -> int:
    busy = 0
    for url in urls.values():
        try:
            stats = await _get_json(client, f"{url}/v1/outbox")
        except httpx.HTTPError:
            continue
        busy += int(stats.get(OutboxStatus.PENDING, 0)) + int(stats.get(OutboxStatus.INFLIGHT, 0))
    return busy


async def wait_answered(
    client: httpx.AsyncClient,
    tcns: list[str],
    *,
    timeout_s: float,
    progress: Progress = _no_progress,
    concurrency: int = 16,
) -> dict[str, dict[str, Any]]:
    """Polls the SIB for each booking until its status is final; returns the last views."""
    views: dict[str, dict[str, Any]] = {}
    waiting = list(tcns)
    semaphore = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout_s

    async def look(tcn: str) -> None:
        async with semaphore:
            r = await client.get(f"/v1/bookings/{tcn}")
            r.raise_for_status()
            views[tcn] = r.json()

    while waiting and time.monotonic() < deadline:
        await asyncio.gather(*(look(tcn) for tcn in waiting))
        waiting = [t for t in waiting if views[t]["status"] not in FINISHED]
        progress("answer", len(tcns) - len(waiting), len(tcns))
        if waiting:
            await asyncio.sleep(0.2)
    return views


async def _issue_keys(world: World, options: RemoteDemoOptions) -> tuple[dict[str, str], str]:
    """The world's LEAs' API keys, issued afresh at the SIB with the operator's channel, and a
    line saying so. None when the SIB's gRPC edge does not answer or issues no keys
    (UNIMPLEMENTED): the bookings then go without, and a SIB that requires keys refuses them at
    the edge (401), counted and shown as edge refusals."""
    address = options.addresses.get(Agency.SIB)
    if address is None:
        return {}, "not issued: no gRPC address of the SIB (--addr sib=HOST:PORT)"
    async with options.channels(Agency.SIB, address) as channel:
        sib = sib_pb2_grpc.StateIdentificationBureauStub(channel)
        try:
            keys = await issue_lea_keys(sib, (agency.ori for agency in world.agencies))
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE):
                raise
            return {}, f"not issued: the SIB at {address} answered {exc.code().name}"
    return keys, f"issued for {len(keys)} LEAs"


async def run_remote_demo(
    options: RemoteDemoOptions, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Drives `options.bookings` bookings through a running federation; returns its summary."""
    if options.bookings < 1:
        raise ValueError("--bookings must be at least 1")
    urls = {
        **{n: u for n, u in options.urls.items() if n not in options.external},
        Agency.SIB: options.sib_url.rstrip("/"),
    }
    world = build_world(
        options.seed,
        options.bookings,
        rebook_gap=max(32, 2 * options.concurrency),
        rollout=PLAN_PHASES if options.rollout else None,
    )
    limits = httpx.Limits(max_connections=options.concurrency * 2)
    async with httpx.AsyncClient(base_url=urls[Agency.SIB], timeout=60.0, limits=limits) as client:
        ready = await client.get("/readyz")
        if ready.status_code != 200:
            raise RuntimeError(f"the SIB at {urls[Agency.SIB]} is not ready: {ready.text[:200]}")
        seeded = None
        if options.seed_world:
            missing = [n for n in Agency if n not in options.addresses]
            if missing:
                raise ValueError(f"seeding needs the gRPC address of {', '.join(missing)}")
            progress("seed", 0, 1)
            seeded = await seed_world(world, options.addresses, channels=options.channels)
            progress("seed", 1, 1)
        if seeded is not None:
            keys, keys_note = seeded.lea_keys, f"issued for {len(seeded.lea_keys)} LEAs"
        else:
            keys, keys_note = await _issue_keys(world, options)
        client.auth = LeaKeys(keys)
        before = await _snapshot(client, urls)
        # Booking numbers carry the run, so runs of the same world never collide at the edge.
        run_tag = uuid.uuid4().hex[:8]
        started = time.monotonic()
        tcns, refused_at_edge = await submit_bookings(
            client,
            world,
            options.concurrency,
            progress,
            options.rate,
            booking_tag=run_tag,
            booking_format=options.format,
        )
        views = await wait_answered(client, tcns, timeout_s=options.timeout_s, progress=progress)
        answered_s = time.monotonic() - started
        ebts: tuple[dict[str, int], list[str]] | None = None
        if options.format == BookingFormat.EBTS:
            ebts = await read_answer_files(client, tcns, options.concurrency)
        # The IAR copies to the field offices and the detainers trail the LEAs' answers.
        deadline = time.monotonic() + min(60.0, options.timeout_s)
        while await _outboxes_busy(client, urls) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        after = await _snapshot(client, urls)
    result = _delta(before, after, urls)
    statuses = [views[t]["status"] if t in views else "unknown" for t in tcns]
    latencies = sorted(
        _latency_ms(views[t]) for t in tcns if t in views and views[t].get("completed_at")
    )
    refused = statuses.count(BookingStatus.REFUSED)
    unanswered = [t for t, s in zip(tcns, statuses, strict=True) if s not in FINISHED]
    result.update(
        bookings=len(tcns),
        answered=statuses.count(BookingStatus.ANSWERED),
        refused=refused,
        unanswered=len(unanswered),
        unanswered_tcns=unanswered[:10],
        errors=refused + len(refused_at_edge) + (result["dead_letters"] or 0),
        edge_refusals=refused_at_edge[:10],
        latency_ms={
            "p50": round(_percentile(latencies, 0.50), 1),
            "p99": round(_percentile(latencies, 0.99), 1),
        },
        elapsed_s=round(answered_s, 2),
        bookings_per_s=round(len(tcns) / answered_s, 1) if answered_s else 0.0,
        seed=options.seed,
        run_tag=run_tag,
        seeded=options.seed_world,
        not_seeded=seeded.not_seeded if seeded is not None else {},
        lea_keys=keys_note,
        sample_tcn=sample_tcn(tcns, views),
        tcns=tcns,
        removals="not run: removal cases need the field offices' fast clock (local demo only)",
    )
    # Refusals at the edge never became a CAR or CPI: the message counts leave them out.
    result["format"] = str(options.format)
    if ebts is not None:
        result["ebts_answers"], bad_files = ebts
        result["ebts_unreadable"] = bad_files[:10]
    flow = {**result, "errors": refused + (result["dead_letters"] or 0)}
    # The checks that read a service left out (its edge not reached, or an external agency
    # without one) are skipped and named, never failed on counts that were not read.
    result["problems"] = consistency(flow) + [
        f"EBTS answer file {problem}" for problem in result.get("ebts_unreadable", [])
    ]
    result["unchecked"] = unchecked(flow)
    result["external"] = sorted(options.external)
    result["unreachable"] = [
        n for n in Agency if n not in result["counted_services"] and n not in options.external
    ]
    return result


def _latency_ms(view: dict[str, Any]) -> float:
    accepted = datetime.fromisoformat(view["accepted_at"])
    done = datetime.fromisoformat(view["completed_at"])
    return (done - accepted).total_seconds() * 1000.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


async def trace_http(tcn: str, urls: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """`tcn`'s journal entries from each service's HTTP edge; also the edges that did not
    answer (a Kubernetes port-forward may reach only the SIB)."""
    entries: list[dict[str, Any]] = []
    unreachable: list[str] = []
    async with httpx.AsyncClient(timeout=10.0) as client:
        for name, url in urls.items():
            try:
                r = await client.get(f"{url.rstrip('/')}/v1/journal/{tcn}")
                r.raise_for_status()
            except httpx.HTTPError:
                unreachable.append(name)
                continue
            entries.extend(r.json())
    return sorted(entries, key=lambda e: e["at"]), unreachable
