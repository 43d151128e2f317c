"""`scfed demo`: start the federation, seed a synthetic world, drive bookings, summarise."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ..federation import Agency
from ..formats import ansi_nist
from ..runtime.envelope import MessageType
from ..runtime.journal import JournalKey, counts_from_json
from ..runtime.models import Direction, OutboxStatus, Outcome
from ..sib.api import BookingIn
from ..sib.lea_client import LeaKeys
from ..sib.models import FINISHED, BookingStatus
from ..sib.transactions import ANSI_NIST_TYPE, car_file
from ..world.rollout import PLAN_PHASES
from ..world.seeding import SeedCounts, seed_world
from ..world.world import World, booking_payload, build_world
from .launcher import DEFAULT_READY_TIMEOUT_S, LocalFederation, external_agencies
from .report import compute, counts_online, rollout_by_phase

Progress = Callable[[str, int, int], None]


class BookingFormat(StrEnum):
    """How the demo's LEAs send their bookings: JSON to POST /v1/bookings, or EBTS CAR files
    to POST /v1/transactions."""

    JSON = "json"
    EBTS = "ebts"


def booking_file(payload: dict[str, Any], dai: str, dat: str) -> bytes:
    """The EBTS CAR file for a booking's JSON: the LEA's own TCN is its booking number."""
    booking = BookingIn.model_validate(payload)
    return car_file(booking, tcn=booking.booking_number, dai=dai, dat=dat)


def _delivered(tot: MessageType) -> JournalKey:
    return JournalKey(Direction.SENT, tot, Outcome.DELIVERED)


def _processed(tot: MessageType) -> JournalKey:
    return JournalKey(Direction.RECEIVED, tot, Outcome.PROCESSED)


# The journal counters a demo's message counts are made of, by service.
JOURNAL_COUNTS: dict[str, dict[str, JournalKey]] = {
    Agency.SIB: {
        "car": _delivered(MessageType.CAR),
        "cpi": _delivered(MessageType.CPI),
        "sre": _processed(MessageType.SRE),
        "no_match_idr": _processed(MessageType.NO_MATCH_IDR),
        "joint_idr_iar": _processed(MessageType.IDR_IAR),
    },
    Agency.CJIS_IAFIS: {
        "iaq_acknowledged": _processed(MessageType.IAQ_ACK),
        "iar": _processed(MessageType.IAR),
    },
    Agency.LESC: {"iaq": _processed(MessageType.IAQ)},
}


def finished_count(by_status: dict[str, int]) -> int:
    """How many bookings of a summary's `by_status` are finished."""
    return sum(n for status, n in by_status.items() if status in FINISHED)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs."""

    bookings: int
    seed: int
    database_url: str | None = None
    data_dir: Path | None = None
    concurrency: int = 16
    # Bookings per second offered to the SIB; None submits as fast as `concurrency` allows.
    rate: float | None = None
    timeout_s: float = 600.0
    # Seconds the services get to be ready before the demo gives up.
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    keep_data: bool = False
    # After the bookings, each LEA notices the release of every subject under detainer, on the
    # release date the world gives the booking, and the field offices run the cases to removal
    # (or lapse) on their fast clock.
    removals: bool = True
    # How much faster than the wall clock the field offices work: 1e6 runs a removal case's
    # ~52 agency days in about 5 seconds, and the world's longest local custody (120 days) in
    # about 10. LESC keeps the launcher's agency speed.
    case_speed: float = 1_000_000.0
    # Mutual TLS between the services (certificates made under the data dir).
    tls: bool = True
    # JSON bookings, or EBTS CAR files (whose answers are then read back as EBTS files too).
    format: BookingFormat = BookingFormat.JSON
    # The world under the national rollout plan (Plan Appendix B): bookings in a jurisdiction
    # its phase has not reached yet get criminal-history processing only.
    rollout: bool = True


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


async def post_booking(
    client: httpx.AsyncClient,
    payload: dict[str, Any],
    retry_for_s: float = 0.0,
    *,
    file: bytes | None = None,
) -> httpx.Response:
    """Posts one booking to the SIB (its EBTS `file` to POST /v1/transactions when given, else
    the JSON); for `retry_for_s` seconds posts it again when the SIB does not answer or answers
    with a 5xx. That is safe: an identical resubmission is answered 200 with the first one's
    TCN."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.1
    while True:
        try:
            if file is None:
                r = await client.post("/v1/bookings", json=payload)
            else:
                headers = {"content-type": ANSI_NIST_TYPE}
                r = await client.post("/v1/transactions", content=file, headers=headers)
        except httpx.TransportError:
            if time.monotonic() >= deadline:
                raise
        else:
            if r.status_code < 500 or time.monotonic() >= deadline:
                return r
        await asyncio.sleep(delay)
        delay = min(2.0, delay * 2)


async def submit_bookings(
    client: httpx.AsyncClient,
    world: World,
    concurrency: int,
    progress: Progress,
    rate: float | None = None,
    booking_tag: str = "",
    *,
    retry_for_s: float = 0.0,
    gate: Callable[[int], Awaitable[None]] | None = None,
    booking_format: BookingFormat = BookingFormat.JSON,
) -> tuple[list[str], list[str]]:
    """Posts every booking in booking order: at most `concurrency` in flight, at most `rate`
    started per second. A `booking_tag` is appended to each booking number, so that a run
    against a federation that already holds another run's bookings does not collide.

    With `retry_for_s`, a booking the SIB does not answer (or answers with a 5xx) is posted
    again for that long (see `post_booking`), and one still unanswered then is reported as
    refused. A `gate` is awaited with each booking's index before it is posted. With
    `booking_format` EBTS each booking goes as a CAR file to POST /v1/transactions."""
    semaphore = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    tcns: list[str] = [""] * len(world.bookings)
    refused: list[str] = []
    done = 0

    async def post(i: int) -> None:
        nonlocal done
        async with semaphore:
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            if gate is not None:
                await gate(i)
            booking = world.bookings[i]
            payload = booking_payload(world, booking)
            if booking_tag:
                payload["booking_number"] = f"{payload['booking_number']}-{booking_tag}"
            file = None
            if booking_format == BookingFormat.EBTS:
                dai = world.state_of(booking.ori).sib_ori
                file = booking_file(payload, dai, datetime.now(UTC).strftime("%Y%m%d"))
            try:
                r = await post_booking(client, payload, retry_for_s, file=file)
            except httpx.TransportError as exc:
                if not retry_for_s:
                    raise
                refused.append(f"{booking.booking_number}: no answer ({exc!r})")
            else:
                if r.status_code in (200, 202):
                    tcns[i] = r.json()["tcn"]
                else:
                    refused.append(f"{booking.booking_number}: HTTP {r.status_code} {r.text[:200]}")
            done += 1
            progress("submit", done, len(world.bookings))

    # Tasks start in order and the semaphore admits them in order, so a re-booking (at least
    # `rebook_gap` > concurrency bookings later) is submitted after its first booking returned.
    await asyncio.gather(*(post(i) for i in range(len(world.bookings))))
    return [t for t in tcns if t], refused


async def outbox_totals(client: httpx.AsyncClient, fed: LocalFederation) -> dict[OutboxStatus, int]:
    """Outbox messages by status, summed over every service of `fed`."""
    totals = dict.fromkeys(OutboxStatus, 0)
    for svc in fed.services.values():
        stats = (await client.get(f"{svc.http_url}/v1/outbox")).json()
        for key in totals:
            totals[key] += int(stats.get(key, 0))
    return totals


def outboxes_idle(totals: dict[OutboxStatus, int]) -> bool:
    """True when no outbox holds a message still to deliver."""
    return totals[OutboxStatus.PENDING] == 0 and totals[OutboxStatus.INFLIGHT] == 0


async def wait_quiet(
    client: httpx.AsyncClient,
    fed: LocalFederation,
    expected: int,
    timeout_s: float,
    progress: Progress,
    poll_s: float = 0.2,
) -> bool:
    """Waits until every booking is final and no outbox holds work, twice in a row (looking
    every `poll_s`); False when that did not happen within `timeout_s`."""
    sib = fed.services[Agency.SIB].http_url
    deadline = time.monotonic() + timeout_s
    previous: dict[OutboxStatus, int] | None = None
    while time.monotonic() < deadline:
        fed.check_running("during the demo")
        summary = (await client.get(f"{sib}/v1/bookings-summary")).json()
        final = finished_count(summary["by_status"])
        progress("answer", final, expected)
        totals = await outbox_totals(client, fed)
        quiet = final >= expected and outboxes_idle(totals)
        if quiet and previous == totals:
            return True
        previous = totals if quiet else None
        await asyncio.sleep(poll_s)
    return False


async def read_answer_files(
    client: httpx.AsyncClient, tcns: list[str], concurrency: int
) -> tuple[dict[str, int], list[str]]:
    """Reads every answer the LEAs were sent as an EBTS file (GET /v1/transactions/{tcn}/
    responses/{n}) and decodes it: the files by TOT, and what was wrong with any that did not
    decode or did not name its booking in 1.010 TCR."""
    semaphore = asyncio.Semaphore(concurrency)
    by_tot: dict[str, int] = {}
    problems: list[str] = []

    async def read(tcn: str) -> None:
        async with semaphore:
            listing = await client.get(f"/v1/transactions/{tcn}/responses")
            listing.raise_for_status()
            for entry in listing.json():
                got = await client.get(entry["href"])
                try:
                    got.raise_for_status()
                    header = ansi_nist.decode(got.content).header
                except (httpx.HTTPStatusError, ansi_nist.AnsiNistError) as exc:
                    problems.append(f"{entry['href']}: {exc}")
                    continue
                if header.first(10) != tcn or header.first(4) != entry["tot"]:
                    problems.append(
                        f"{entry['href']}: TOT {header.first(4)} TCR {header.first(10)}"
                    )
                by_tot[header.first(4)] = by_tot.get(header.first(4), 0) + 1

    await asyncio.gather(*(read(tcn) for tcn in tcns))
    return dict(sorted(by_tot.items())), problems


# An LEA sends its release notice this long before the release date it gives, so the date is
# still ahead when the notice reaches the field office on its fast clock.
NOTICE_LEAD = timedelta(days=2)


async def _notice_releases(
    client: httpx.AsyncClient, world: World, ice_url: str, progress: Progress
) -> int:
    """Each LEA tells ICE when it will release every subject it holds a detainer for: the
    booking's release date in the world, counted in the field office's agency time."""
    release_days = {b.booking_number: b.release_after_days for b in world.bookings}
    # A detainer lodged again with a later booking's LEA reaches that LEA's inbox too: the
    # latest lodging (the highest message id) is the one whose LEA holds the person.
    lodged: dict[str, tuple[int, str, int]] = {}
    for agency in world.agencies:
        after = 0
        while True:
            r = await client.get(
                f"/v1/agencies/{agency.ori}/messages", params={"after": after, "limit": 1000}
            )
            r.raise_for_status()
            page = r.json()
            if not page:
                break
            after = page[-1]["id"]
            for m in page:
                if m["kind"] != "I-247":
                    continue
                detainer = m["body"]["detainer"]
                days = release_days.get(detainer.get("booking_number", ""), 1)
                known = lodged.get(detainer["detainer_id"])
                if known is None or known[0] < m["id"]:
                    lodged[detainer["detainer_id"]] = (m["id"], agency.ori, days)
    detainers = [(ori, detainer_id, days) for detainer_id, (_, ori, days) in lodged.items()]
    for done, (ori, detainer_id, days) in enumerate(detainers, start=1):
        clock = await client.get(f"{ice_url}/v1/clock")
        clock.raise_for_status()
        release_at = datetime.fromisoformat(clock.json()["now"]) + NOTICE_LEAD + timedelta(days)
        r = await client.post(
            "/v1/release-notices",
            json={"ori": ori, "detainer_id": detainer_id, "release_at": release_at.isoformat()},
        )
        if r.status_code != 202:
            raise RuntimeError(f"release notice for {detainer_id}: HTTP {r.status_code} {r.text}")
        progress("release", done, len(detainers))
    return len(detainers)


async def _wait_cases_closed(
    client: httpx.AsyncClient, fed: LocalFederation, timeout_s: float, progress: Progress
) -> None:
    """Waits until every removal case has ended (removed, lapsed or relief) and all is quiet."""
    ice = fed.services[Agency.ICE_FIELD].http_url
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fed.check_running("during the demo")
        summary = (await client.get(f"{ice}/v1/cases-summary")).json()
        progress("cases", summary["cases"] - summary["open"], summary["cases"])
        totals = await outbox_totals(client, fed)
        if summary["open"] == 0 and outboxes_idle(totals):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"removal cases still open after {timeout_s:g}s")


# Answers that show a booking crossed IDENT: the best one to suggest tracing.
SEARCHED_ANSWERS = frozenset(
    {MessageType.IDR, MessageType.NO_MATCH_IDR, MessageType.IDR_IAR, MessageType.I247}
)
# How many bookings the local demo reads back, at most, to find one that crossed IDENT.
SAMPLE_LOOK_AT = 64


def crossed_ident(view: dict[str, Any]) -> bool:
    """Whether a booking's view (the SIB's `GET /v1/bookings/{tcn}`) shows an answer that
    only a search of IDENT gives (under the rollout plan many bookings get criminal history
    only, and their trace stops at CJIS)."""
    return bool({r.get("kind") for r in view.get("responses", [])} & SEARCHED_ANSWERS)


async def _sample_tcn(client: httpx.AsyncClient, tcns: list[str]) -> str:
    """The booking to suggest tracing: the first of the first SAMPLE_LOOK_AT that crossed
    IDENT, else the first."""
    for tcn in tcns[:SAMPLE_LOOK_AT]:
        r = await client.get(f"/v1/bookings/{tcn}")
        if r.status_code == 200 and crossed_ident(r.json()):
            return tcn
    return tcns[0] if tcns else ""


async def _collect(
    client: httpx.AsyncClient, fed: LocalFederation, tcns: list[str]
) -> dict[str, Any]:
    journals = {
        name: counts_from_json((await client.get(f"{svc.http_url}/v1/journal-counts")).json())
        for name, svc in fed.services.items()
    }
    counted = {
        label: journals[name].get(key, 0)
        for name, keys in JOURNAL_COUNTS.items()
        for label, key in keys.items()
    }
    sib_url = fed.services[Agency.SIB].http_url
    ident_url = fed.services[Agency.IDENT].http_url
    summary = (await client.get(f"{sib_url}/v1/bookings-summary")).json()
    ident = (await client.get(f"{ident_url}/v1/stats")).json()
    outbox = await outbox_totals(client, fed)
    final = finished_count(summary["by_status"])
    refused = summary["by_status"].get(BookingStatus.REFUSED, 0)
    return {
        "bookings": summary["bookings"],
        "car": counted["car"],
        "cpi": counted["cpi"],
        "sre": counted["sre"],
        "ident_searches": ident["searches"],
        "ident_matches": ident["matches"],
        "no_match_idr": counted["no_match_idr"],
        "iaq": counted["iaq"],
        "iaq_acknowledged": counted["iaq_acknowledged"],
        "iar": counted["iar"],
        "joint_idr_iar": counted["joint_idr_iar"],
        "relayed_to_lea": summary["relayed_to_lea"],
        "not_relayed": summary["not_relayed"],
        "detainers": summary["detainers"],
        "errors": refused + outbox[OutboxStatus.DEAD],
        "dead_letters": outbox[OutboxStatus.DEAD],
        "unanswered": max(0, len(tcns) - final),
        # Where the unanswered bookings stand (for example awaiting_fbi_number, submitted).
        "unanswered_by_status": {
            status: n for status, n in summary["by_status"].items() if status not in FINISHED and n
        },
        "latency_ms": summary["latency_ms"],
        "sample_tcn": await _sample_tcn(client, tcns),
    }


@dataclass(frozen=True)
class Check:
    """One rule a demo's counts must keep: what it says, what breaking it says, what it reads."""

    rule: str
    failure: str
    counts: tuple[str, ...]
    holds: Callable[..., bool]


CHECKS: tuple[Check, ...] = (
    Check(
        "CAR + CPI = SRE + errors",
        "CAR + CPI != SRE + errors",
        ("car", "cpi", "sre", "errors"),
        lambda car, cpi, sre, errors: car + cpi == sre + errors,
    ),
    Check(
        "IDENT searches = matches + no-match IDRs",
        "IDENT searches != matches + no-match IDRs",
        ("ident_searches", "ident_matches", "no_match_idr"),
        lambda searches, matches, no_match: searches == matches + no_match,
    ),
    Check(
        "IAQ = IAR = joint IDR/IAR",
        "IAQ, IAR and joint IDR/IAR differ",
        ("iaq", "iar", "joint_idr_iar"),
        lambda iaq, iar, joint: iaq == iar == joint,
    ),
    Check(
        "IAQ = IDENT matches",
        "IAQ and IDENT matches differ",
        ("iaq", "ident_matches"),
        lambda iaq, matches: iaq == matches,
    ),
    Check(
        "relayed + not relayed = IDENT searches",
        "relayed + not relayed != IDENT searches",
        ("relayed_to_lea", "not_relayed", "ident_searches"),
        lambda relayed, not_relayed, searches: relayed + not_relayed == searches,
    ),
)


def consistency(result: dict[str, Any]) -> list[str]:
    """What does not add up in a demo result (an empty list when everything does). A check
    that reads a count the result lacks (None: its service was not read) is skipped, and
    `unchecked` names it."""
    problems = []
    if result["unanswered"]:
        problems.append(f"{result['unanswered']} bookings unanswered")
    for check in CHECKS:
        values = [result[k] for k in check.counts]
        if None not in values and not check.holds(*values):
            problems.append(check.failure)
    return problems


def unchecked(result: dict[str, Any]) -> list[str]:
    """The checks `consistency` skipped, each with the counts it lacked."""
    skipped = []
    for check in CHECKS:
        missing = [k for k in check.counts if result[k] is None]
        if missing:
            skipped.append(f"{check.rule} (no {', '.join(missing)})")
    return skipped


async def drop_schemas(database_url: str, schemas: Iterable[str]) -> None:
    """Drops these schemas of the PostgreSQL at `database_url`, with all they hold, where they
    exist."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@asynccontextmanager
async def seeded_federation(
    fed: LocalFederation,
    world: World,
    progress: Progress,
    *,
    drop_data: bool = True,
    remove_data_dir: bool = True,
) -> AsyncIterator[SeedCounts]:
    """Starts `fed`, waits until it is ready and seeds `world` into it (the counts, with each
    LEA's key); at the end stops it, drops its PostgreSQL schemas (with `drop_data`) and
    removes its data directory (with `remove_data_dir`)."""
    fed.start()
    try:
        await fed.wait_ready()
        progress("seed", 0, 1)
        seeded = await seed_world(world, fed.addresses(), channels=fed.operator_channels())
        progress("seed", 1, 1)
        yield seeded
    finally:
        fed.stop()
        if fed.database_url and drop_data:
            schemas = (f"{fed.schema_prefix}_{name}" for name in Agency)
            await drop_schemas(fed.database_url, schemas)
        if remove_data_dir:
            shutil.rmtree(fed.data_dir, ignore_errors=True)


async def run_demo(options: DemoOptions, progress: Progress = _no_progress) -> dict[str, Any]:
    """Runs the whole demo and returns its summary."""
    if options.bookings < 1:
        raise ValueError("--bookings must be at least 1")
    external = external_agencies(os.environ)
    if external:
        variables = ", ".join(a.profile.address_variable for a in external)
        raise ValueError(
            f"the local demo runs all five agencies itself, but {variables} names an external "
            "one: unset it, or start the federation with `scfed up` and use --sib-url"
        )
    world = build_world(
        options.seed,
        options.bookings,
        rebook_gap=max(32, 2 * options.concurrency),
        rollout=PLAN_PHASES if options.rollout else None,
    )
    temporary = options.data_dir is None
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="scfed-demo-"))
    prefix = f"scfed_demo_{uuid.uuid4().hex[:8]}"
    fed = LocalFederation(
        data_dir=data_dir,
        database_url=options.database_url,
        schema_prefix=prefix,
        speeds={Agency.ICE_FIELD: options.case_speed},
        extra_env=world.lesc_staffing.settings(),
        ready_timeout=options.ready_timeout_s,
        tls=options.tls,
    )
    keep = options.keep_data
    async with seeded_federation(
        fed, world, progress, drop_data=not keep, remove_data_dir=temporary and not keep
    ) as seeded:
        limits = httpx.Limits(max_connections=options.concurrency * 2)
        async with httpx.AsyncClient(
            base_url=fed.services[Agency.SIB].http_url,
            timeout=60.0,
            limits=limits,
            auth=LeaKeys(seeded.lea_keys),
        ) as client:
            started = time.monotonic()
            tcns, refused_at_edge = await submit_bookings(
                client,
                world,
                options.concurrency,
                progress,
                options.rate,
                booking_format=options.format,
            )
            await wait_quiet(client, fed, len(tcns), options.timeout_s, progress)
            elapsed = time.monotonic() - started
            result = await _collect(client, fed, tcns)
            result["format"] = str(options.format)
            if options.format == BookingFormat.EBTS:
                files, bad_files = await read_answer_files(client, tcns, options.concurrency)
                result["ebts_answers"] = files
                result["ebts_unreadable"] = bad_files[:10]
            result["releases"] = 0
            ice = fed.services[Agency.ICE_FIELD].http_url
            if options.removals:
                result["releases"] = await _notice_releases(client, world, ice, progress)
                await _wait_cases_closed(client, fed, options.timeout_s, progress)
            result["cases"] = (await client.get(f"{ice}/v1/cases-summary")).json()
            urls = {name: svc.http_url for name, svc in fed.services.items()}
            counts, unreadable = await counts_online(urls)
            result["measures"] = compute(counts, unreadable)
            result["rollout"] = rollout_by_phase(counts)
        result["errors"] += len(refused_at_edge)
        result["edge_refusals"] = refused_at_edge[:10]
        result["seed"] = options.seed
        result["elapsed_s"] = round(elapsed, 2)
        result["bookings_per_s"] = round(len(tcns) / elapsed, 1) if elapsed else 0.0
        result["database"] = "postgresql" if options.database_url else "sqlite"
        result["data_dir"] = "" if temporary else str(data_dir)
        result["problems"] = consistency(result) + [
            f"EBTS answer file {problem}" for problem in result.get("ebts_unreadable", [])
        ]
        return result
