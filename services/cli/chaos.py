"""`scfed bench chaos`: bookings through the federation while its agencies fail, then a count
of what was lost or done twice.

The bench starts the five services (LocalFederation, free ports, the agencies' fast clock),
seeds the demo's world and submits N bookings with K in flight. A schedule of fault episodes,
fixed by the seed and spread over the submission, runs one episode at a time: each agency in
turn is killed with SIGKILL and restarted, one is paused (SIGSTOP, then SIGCONT), pairs are
partitioned, and for a few seconds a service loses acknowledgements (it processes a message,
the sender sees UNAVAILABLE and retries) or answers a share of calls with a transient error.
Partitions, lost acks and transient errors are rules on the services' `/v1/faults` edge; where
a service has no such edge (404) that kind is reported "unavailable" and skipped. Booking i
is posted only once the episodes due before it have started, so the faults meet traffic at
any speed. A booking the SIB does not answer while it is down is posted again (idempotent).

After the last episode every fault is cleared and the bench waits (at most the drain
timeout) until every booking has its final response and every outbox is idle. It reports:

- answered: bookings whose SIB status is final (answered, or refused with an ERRT);
- lost: bookings never answered (including any the SIB never accepted);
- duplicated: (1) a message id processed twice by one service (the inbox failed); (2) one
  service processing the same TCN and TOT twice (journal "received/processed" entries; fault
  entries are not counted), which also catches two IARs for one IAQ (CJIS) and two detainers
  for one booking (the SIB's I-247); no message of one booking's flow may legitimately be
  processed twice by one service, so no (TCN, TOT) pair is exempt (`REPEATABLE_TOTS`); (3) a
  booking holding two SIB responses of one kind (two SREs, two I-247 detainers, ...);
- dead_letters: outbox messages in the dead state, summed over the services;
- redelivered: messages received again and recognised as duplicates by the inbox (not
  counted as duplicated: that is the inbox doing its job);
- drain_s: seconds from clearing the last fault to everything answered and idle;
- the faults actually injected, and the elapsed time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from ..federation import Agency
from ..runtime.models import Direction, OutboxStatus, Outcome
from ..sib.lea_client import LeaKeys
from ..sib.models import FINISHED, BookingStatus
from ..world.world import build_world
from .demo import Progress, outbox_totals, seeded_federation, submit_bookings, wait_quiet
from .launcher import DEFAULT_READY_TIMEOUT_S, LocalFederation


class FaultKind(StrEnum):
    """What one episode of the schedule does to the federation."""

    KILL = "kill"
    PAUSE = "pause"
    PARTITION = "partition"
    LOST_ACK = "lost_ack"
    TRANSIENT = "transient"


# The report's name for each kind's count.
FAULT_COUNTS: Mapping[FaultKind, str] = {
    FaultKind.KILL: "kills",
    FaultKind.PAUSE: "pauses",
    FaultKind.PARTITION: "partitions",
    FaultKind.LOST_ACK: "lost_acks",
    FaultKind.TRANSIENT: "transient_errors",
}

# TOTs one service may legitimately process more than once for one booking TCN. None: every
# message of a booking's flow (CAR/CPI, IDENT-SEARCH, IDR, SRE, IAQ, IAQ-ACK, IAR, IAR-COPY,
# IDR/IAR, NO-MATCH-IDR, I-247) is sent once per booking, and a retry keeps its message id.
REPEATABLE_TOTS: frozenset[str] = frozenset()

# Share of calls a lost-ack or transient-error rule hits while it is active.
LOST_ACK_PROBABILITY = 0.25
TRANSIENT_PROBABILITY = 0.2


@dataclass(frozen=True)
class Episode:
    """One fault: starts once `at_booking` bookings were submitted, lasts `hold_s` seconds
    (for a kill: how long the service stays down)."""

    at_booking: int
    kind: FaultKind
    target: str
    peer: str = ""
    hold_s: float = 3.0


def chaos_schedule(bookings: int, seed: int) -> list[Episode]:
    """The fault episodes for `bookings` bookings, the same for the same seed.

    One round per 200 bookings (at least one, at most one per agency): each round kills the
    next agency of a seeded order, partitions one pair, and gives one service lost acks and
    one transient errors; every other round pauses one. Episodes are spread evenly between 5%
    and 80% of the submission. From 200 bookings on the pause outlasts the outbox's 10 s call
    deadline, so senders time out and retry into a process that then handles both calls.
    """
    rng = random.Random(seed)
    rounds = max(1, min(len(Agency), bookings // 200))
    long_run = bookings >= 200
    agencies = [str(a) for a in Agency]
    kill_order = rng.sample(agencies, len(agencies))
    pairs = list(itertools.combinations(agencies, 2))
    rng.shuffle(pairs)
    kinds: list[tuple[FaultKind, str, str, float]] = []
    for r in range(rounds):
        kinds.append((FaultKind.KILL, kill_order[r], "", 1.0))
        if r % 2 == 0:
            kinds.append((FaultKind.PAUSE, rng.choice(agencies), "", 12.0 if long_run else 3.0))
        a, b = pairs[r]
        kinds.append((FaultKind.PARTITION, a, b, 6.0 if long_run else 3.0))
        kinds.append((FaultKind.LOST_ACK, rng.choice(agencies), "", 6.0 if long_run else 3.0))
        kinds.append((FaultKind.TRANSIENT, rng.choice(agencies), "", 6.0 if long_run else 3.0))
    rng.shuffle(kinds)
    first, last = max(1, bookings // 20), max(1, bookings * 4 // 5)
    step = (last - first) / max(1, len(kinds) - 1)
    return [
        Episode(int(first + i * step), kind, target, peer, hold)
        for i, (kind, target, peer, hold) in enumerate(kinds)
    ]


def fault_rule(episode: Episode, bookings: int) -> dict[str, Any]:
    """The `/v1/faults` rule that makes a partition, lost-ack or transient episode, on the
    episode's target; it expires by itself a minute after the episode should have ended."""
    expires = episode.hold_s + 60.0
    if episode.kind is FaultKind.PARTITION:
        return {"action": "partition", "peer": episode.peer, "expires_in_s": expires}
    if episode.kind is FaultKind.LOST_ACK:
        return {
            "action": "drop_ack",
            "side": "receive",
            "probability": LOST_ACK_PROBABILITY,
            "count": max(5, bookings // 20),
            "expires_in_s": expires,
        }
    if episode.kind is FaultKind.TRANSIENT:
        return {
            "action": "status",
            "code": "UNAVAILABLE",
            "details": "chaos: transient error",
            "side": "receive",
            "probability": TRANSIENT_PROBABILITY,
            "count": max(5, bookings // 10),
            "expires_in_s": expires,
        }
    raise ValueError(f"{episode.kind} is not made with a fault rule")


def find_duplicates(
    journals: Mapping[str, Iterable[Mapping[str, Any]]],
    responses: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """Every sign of work done twice, one line each.

    `journals` holds each booking TCN's journal entries from every service (as the HTTP
    edge's /v1/journal/{tcn} gives them, each with its "service"); `responses` each TCN's
    SIB response kinds. Only received entries with outcome "processed" count: a retried
    message is journaled "duplicate" and an injected fault "fault", both as they should be.
    """
    found: list[str] = []
    by_message: Counter[tuple[str, str]] = Counter()
    by_tot: Counter[tuple[str, str, str]] = Counter()
    for tcn, entries in journals.items():
        for e in entries:
            if e["direction"] != Direction.RECEIVED or e["outcome"] != Outcome.PROCESSED:
                continue
            by_message[e["service"], e["message_id"]] += 1
            if e["tot"] not in REPEATABLE_TOTS:
                by_tot[e["service"], tcn, e["tot"]] += 1
    found += [
        f"{svc} processed message {mid} {n} times" for (svc, mid), n in by_message.items() if n > 1
    ]
    found += [
        f"{svc} processed {tot} of {tcn} {n} times"
        for (svc, tcn, tot), n in by_tot.items()
        if n > 1
    ]
    for tcn, kinds in (responses or {}).items():
        found += [
            f"booking {tcn} holds {n} {kind} responses"
            for kind, n in Counter(kinds).items()
            if n > 1
        ]
    return found


def redeliveries(journals: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
    """Received journal entries with outcome "duplicate": retries the inboxes absorbed, the
    evidence that the faults made senders send again."""
    return sum(
        1
        for entries in journals.values()
        for e in entries
        if e["direction"] == Direction.RECEIVED and e["outcome"] == Outcome.DUPLICATE
    )


@dataclass(frozen=True)
class ChaosOptions:
    """What the chaos bench runs."""

    bookings: int = 1000
    seed: int = 1
    database_url: str | None = None
    in_flight: int = 16
    drain_timeout_s: float = 300.0
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    # How long a booking is posted again while the SIB does not answer.
    submit_retry_s: float = 120.0


@dataclass
class FaultTally:
    """The faults actually injected, and the kinds the services could not inject."""

    counts: Counter[str] = field(default_factory=Counter)
    unavailable: set[str] = field(default_factory=set)


class FaultEdge:
    """The services' `/v1/faults` HTTP edge."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self._client = client
        # The operator's token (the fault routes are the operator's).
        self._headers = headers

    async def add(self, url: str, rule: dict[str, Any]) -> str | None:
        """Adds a rule; its id, or None when the service has no fault edge (404)."""
        r = await self._client.post(f"{url}/v1/faults", json=rule, headers=self._headers)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return str(r.json()["id"])

    async def remove(self, url: str, rule_id: str, count: int | None) -> int:
        """Removes one rule; how many times it was injected. A rule that used up its `count`
        is no longer listed (nor removable): it was injected `count` times. The bench's rules
        expire well after their episode, so a rule missing for another reason does not arise."""
        r = await self._client.get(f"{url}/v1/faults", headers=self._headers)
        r.raise_for_status()
        listed = [int(x.get("injected", 0)) for x in r.json()["rules"] if x["id"] == rule_id]
        if not listed:
            return count or 0
        await self._client.delete(f"{url}/v1/faults/{rule_id}", headers=self._headers)
        return listed[0]

    async def clear(self, urls: Iterable[str]) -> None:
        """Removes every rule of every service (those without a fault edge are skipped)."""
        for url in urls:
            try:
                await self._client.delete(f"{url}/v1/faults", headers=self._headers)
            except httpx.HTTPError:
                continue


async def run_episode(
    episode: Episode, fed: LocalFederation, edge: FaultEdge, tally: FaultTally, bookings: int
) -> None:
    """Injects one fault, holds it, and ends it (restarts, resumes, or removes the rule)."""
    svc = fed.services[episode.target]
    name = FAULT_COUNTS[episode.kind]
    if episode.kind is FaultKind.KILL:
        assert svc.process is not None
        os.kill(svc.process.pid, signal.SIGKILL)
        tally.counts[name] += 1
        await asyncio.sleep(episode.hold_s)
        await asyncio.to_thread(fed.restart, episode.target)
        await fed.wait_ready()
        return
    if episode.kind is FaultKind.PAUSE:
        assert svc.process is not None
        os.kill(svc.process.pid, signal.SIGSTOP)
        tally.counts[name] += 1
        try:
            await asyncio.sleep(episode.hold_s)
        finally:
            os.kill(svc.process.pid, signal.SIGCONT)
        return
    rule = fault_rule(episode, bookings)
    rule_id = await edge.add(svc.http_url, rule)
    if rule_id is None:
        tally.unavailable.add(name)
        return
    await asyncio.sleep(episode.hold_s)
    injected = await edge.remove(svc.http_url, rule_id, rule.get("count"))
    tally.counts[name] += 1 if episode.kind is FaultKind.PARTITION else injected


class Gate:
    """Lets booking i through once every episode due at or before i has started."""

    def __init__(self, schedule: list[Episode]) -> None:
        self.schedule = schedule
        self.started = [asyncio.Event() for _ in schedule]
        self.submitted = 0

    async def __call__(self, index: int) -> None:
        for episode, started in zip(self.schedule, self.started, strict=True):
            if episode.at_booking <= index:
                await started.wait()

    def open_all(self) -> None:
        """Lets every booking through (the schedule ended, or failed)."""
        for started in self.started:
            started.set()


async def run_schedule(
    schedule: list[Episode],
    gate: Gate,
    run: Callable[[Episode], Awaitable[None]],
    submission: asyncio.Task[Any],
) -> None:
    """Runs the episodes one at a time, each once its booking is due (or the submission is
    over), and opens its gate as it starts."""
    try:
        for episode, started in zip(schedule, gate.started, strict=True):
            while gate.submitted < episode.at_booking and not submission.done():
                await asyncio.sleep(0.05)
            started.set()
            await run(episode)
    finally:
        gate.open_all()


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


async def read_json(client: httpx.AsyncClient, url: str, attempts: int = 5) -> Any:
    """GET `url`'s JSON, trying again (at most `attempts` times) when the connection fails:
    a kept-alive connection the server closes just as it is reused fails that way."""
    for attempt in range(1, attempts + 1):
        try:
            r = await client.get(url)
        except httpx.TransportError:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.1 * attempt)
            continue
        r.raise_for_status()
        return r.json()
    raise AssertionError("unreachable")


async def _journals(
    client: httpx.AsyncClient, fed: LocalFederation, tcns: list[str], in_flight: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Each TCN's journal entries from every service, and its SIB booking view."""
    semaphore = asyncio.Semaphore(in_flight)
    journals: dict[str, list[dict[str, Any]]] = {t: [] for t in tcns}
    views: dict[str, dict[str, Any]] = {}
    sib = fed.services[Agency.SIB].http_url

    async def read(tcn: str) -> None:
        async with semaphore:
            for svc in fed.services.values():
                journals[tcn].extend(await read_json(client, f"{svc.http_url}/v1/journal/{tcn}"))
            views[tcn] = await read_json(client, f"{sib}/v1/bookings/{tcn}")

    await asyncio.gather(*(read(t) for t in tcns))
    return journals, views


async def run_chaos(options: ChaosOptions, progress: Progress = _no_progress) -> dict[str, Any]:
    """Runs the chaos bench and returns its report."""
    if options.bookings < 1:
        raise ValueError("--bookings must be at least 1")
    world = build_world(options.seed, options.bookings, rebook_gap=max(32, 2 * options.in_flight))
    schedule = chaos_schedule(options.bookings, options.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="scfed-chaos-"))
    prefix = f"chaos_{uuid.uuid4().hex[:8]}"
    fed = LocalFederation(
        data_dir=data_dir,
        database_url=options.database_url,
        schema_prefix=prefix,
        extra_env=world.lesc_staffing.settings(),
        ready_timeout=options.ready_timeout_s,
        external={},
    )
    tally = FaultTally()
    async with seeded_federation(fed, world, progress) as seeded:
        # Idle connections are dropped before the services' 5 s keep-alive ends, so a request
        # never goes out on a connection the server is closing.
        limits = httpx.Limits(max_connections=options.in_flight * 2, keepalive_expiry=2.0)
        async with httpx.AsyncClient(
            base_url=fed.services[Agency.SIB].http_url,
            timeout=20.0,
            limits=limits,
            auth=LeaKeys(seeded.lea_keys),
        ) as client:
            edge = FaultEdge(client, fed.operator_headers())
            gate = Gate(schedule)

            def submitted(stage: str, done: int, total: int) -> None:
                gate.submitted = done
                progress(stage, done, total)

            started = time.monotonic()
            submission = asyncio.create_task(
                submit_bookings(
                    client,
                    world,
                    options.in_flight,
                    submitted,
                    retry_for_s=options.submit_retry_s,
                    gate=gate,
                )
            )
            try:
                await run_schedule(
                    schedule,
                    gate,
                    lambda e: run_episode(e, fed, edge, tally, options.bookings),
                    submission,
                )
            finally:
                tcns, refused_at_edge = await submission
            await edge.clear(svc.http_url for svc in fed.services.values())
            crashed = fed.exited()
            for name in crashed:
                await asyncio.to_thread(fed.restart, name)
            await fed.wait_ready()
            cleared = time.monotonic()
            drained = await wait_quiet(client, fed, len(tcns), options.drain_timeout_s, progress)
            drain_s = time.monotonic() - cleared
            elapsed = time.monotonic() - started
            journals, views = await _journals(client, fed, tcns, options.in_flight)
            outbox = await outbox_totals(client, fed)
    statuses = {t: views[t]["status"] for t in tcns}
    answered = sum(1 for s in statuses.values() if s in FINISHED)
    responses = {t: [r["kind"] for r in views[t]["responses"]] for t in tcns}
    duplicates = find_duplicates(journals, responses)
    return {
        "bookings": options.bookings,
        "submitted": len(tcns),
        "answered": answered,
        "refused": sum(1 for s in statuses.values() if s == BookingStatus.REFUSED),
        "lost": options.bookings - answered,
        "lost_tcns": sorted(t for t, s in statuses.items() if s not in FINISHED)[:20],
        "not_submitted": refused_at_edge[:20],
        "duplicated": len(duplicates),
        "duplicates": duplicates[:20],
        "dead_letters": outbox[OutboxStatus.DEAD],
        "redelivered": redeliveries(journals),
        "drained": drained,
        "drain_s": round(drain_s, 2),
        "faults": {name: tally.counts[name] for name in FAULT_COUNTS.values()},
        "unavailable": sorted(tally.unavailable),
        "episodes": len(schedule),
        "crashed": crashed,
        "elapsed_s": round(elapsed, 2),
        "seed": options.seed,
        "in_flight": options.in_flight,
        "database": "postgresql" if options.database_url else "sqlite",
    }


def failed(report: Mapping[str, Any]) -> bool:
    """True when the run lost, duplicated or dead-lettered anything."""
    return bool(report["lost"] or report["duplicated"] or report["dead_letters"])


def render_chaos(report: Mapping[str, Any]) -> str:
    """The report as a table of text."""
    faults = report["faults"]
    rows = [
        ("bookings", report["bookings"]),
        ("answered", report["answered"]),
        ("  of which refused (ERRT)", report["refused"]),
        ("lost", report["lost"]),
        ("duplicated", report["duplicated"]),
        ("dead letters", report["dead_letters"]),
        ("redelivered (inbox absorbed)", report["redelivered"]),
        ("drain (s)", f"{report['drain_s']:.2f}" + ("" if report["drained"] else " (timed out)")),
        ("elapsed (s)", f"{report['elapsed_s']:.2f}"),
        *((f"faults: {name}", n) for name, n in faults.items()),
    ]
    title = (
        f"scfed bench chaos: {report['bookings']} bookings, seed {report['seed']}, "
        f"{report['in_flight']} in flight, {report['database']}, {report['episodes']} episodes"
    )
    lines = [title, *(f"{label:<28} {value:>10}" for label, value in rows)]
    if report["unavailable"]:
        lines.append(f"unavailable (no /v1/faults): {', '.join(report['unavailable'])}")
    if report["crashed"]:
        lines.append(f"ended by themselves: {', '.join(report['crashed'])}")
    lines += [f"lost: {t}" for t in report["lost_tcns"]]
    lines += [f"not submitted: {t}" for t in report["not_submitted"]]
    lines += [f"duplicate: {d}" for d in report["duplicates"]]
    lines.append("FAILED" if failed(report) else "OK")
    return "\n".join(lines)
