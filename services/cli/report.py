"""`scfed report`: the Strategic Plan's performance measures, goals 1.1 to 3.3.

Each measure is computed from the federation's own records: the SIB's bookings and responses,
LESC's cases, and the field offices' removal cases and facilities. Each service counts its own
records (`/v1/measures` on its HTTP edge, or straight from its database when the federation is
stopped); this module turns the counts into the measures and states each one's definition.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ..federation import Agency
from ..ice_field import measures as ice_field_measures
from ..lesc import measures as lesc_measures
from ..runtime.db import Database
from ..runtime.formats import iso_day
from ..sib import measures as sib_measures
from ..world.rollout import PLAN_PHASES
from .offline import OfflineDatabases

Counts = Mapping[str, Mapping[str, float]]
CountFunction = Callable[[AsyncSession, datetime | None], Awaitable[dict[str, float]]]

# The services whose records the measures read, and how each counts them.
SOURCES: dict[Agency, CountFunction] = {
    Agency.SIB: sib_measures.counts,
    Agency.LESC: lesc_measures.counts,
    Agency.ICE_FIELD: ice_field_measures.counts,
}


@dataclass(frozen=True)
class Measure:
    """One Strategic Plan measure: its goal, wording, our definition, and how to compute it."""

    key: str
    goal: str
    name: str
    definition: str
    unit: str  # "%", "count" or "days"
    numerator: tuple[str, str]  # (service, count)
    denominator: tuple[str, str] | None = None  # None: the numerator is the value


def _ice(name: str) -> tuple[str, str]:
    return (Agency.ICE_FIELD, name)


# Goal 3.3's counts are made of several services' records by `review_programs`.
REVIEW = "review"


MEASURES: tuple[Measure, ...] = (
    Measure(
        "biometric_coverage_pct",
        "1.1",
        "Percent of the criminal alien population covered by the biometric identification system",
        "Bookings whose prints were checked against IDENT (the state's MOA in effect and the "
        "LEA's jurisdiction activated) as a percent of all bookings the SIBs took. Every booked "
        "person is charged with a crime, so the bookings stand for the criminal population the "
        "federation sees.",
        "%",
        (Agency.SIB, "bookings_checked_against_ident"),
        (Agency.SIB, "bookings"),
    ),
    Measure(
        "aliens_identified",
        "1.2",
        "Number of charged or convicted aliens identified through integrated record checks",
        "IAQs on which LESC found an immigration status other than citizen.",
        "count",
        (Agency.LESC, "aliens_identified"),
    ),
    Measure(
        "level_1_aliens_identified",
        "1.2",
        "Number of aliens charged or convicted of a Level 1 offense identified through "
        "integrated record checks",
        "Those of the aliens identified whose current charges or prior convictions include a "
        "Level 1 offense (Appendix A table of the deployment).",
        "count",
        (Agency.LESC, "level_1_aliens_identified"),
    ),
    Measure(
        "timely_responses_pct",
        "1.3",
        "Percent of submissions receiving timely responses",
        "Interoperability answers in time (no-match IDRs, which CJIS returns at once, and IARs "
        "LESC answered within its answer target) as a percent of all no-match IDRs and IARs.",
        "%",
        (Agency.SIB, "timely_answers"),
        (Agency.SIB, "interoperability_answers"),
    ),
    Measure(
        "criminal_alien_arrests_pct",
        "2.1",
        "Criminal alien arrests as a percent of total alien arrests",
        "ICE arrests (a detainer's subject taken into ICE custody or Alternatives to Detention) "
        "of people with a prior conviction, as a percent of all ICE arrests.",
        "%",
        _ice("criminal_alien_arrests"),
        _ice("alien_arrests"),
    ),
    Measure(
        "level_1_criminal_alien_arrests_pct",
        "2.1",
        "Arrests of criminal aliens convicted of a Level 1 offense as a percent of criminal "
        "alien arrests",
        "ICE arrests of people with a prior Level 1 conviction, as a percent of ICE arrests of "
        "people with any prior conviction.",
        "%",
        _ice("level_1_criminal_alien_arrests"),
        _ice("criminal_alien_arrests"),
    ),
    Measure(
        "criminal_alien_removals_pct",
        "2.2",
        "Criminal alien removals as a percentage of total alien removals",
        "Removals of people with a prior conviction as a percent of all removals.",
        "%",
        _ice("criminal_alien_removals"),
        _ice("removals"),
    ),
    Measure(
        "level_1_criminal_alien_removals_pct",
        "2.2",
        "Criminal aliens convicted of a Level 1 offense removed as a percent of total criminal "
        "alien removals",
        "Removals of people with a prior Level 1 conviction as a percent of removals of people "
        "with any prior conviction.",
        "%",
        _ice("level_1_criminal_alien_removals"),
        _ice("criminal_alien_removals"),
    ),
    Measure(
        "average_custody_days",
        "3.1",
        "Average time spent in ICE custody by criminal aliens",
        "Mean days, on the field offices' clock, from taking a bed to removal or release, over "
        "the people with a prior conviction whose custody has ended.",
        "days",
        _ice("criminal_custody_days_total"),
        _ice("criminal_custody_stays_ended"),
    ),
    Measure(
        "beds_occupied_by_criminal_aliens_pct",
        "3.2",
        "Percent of ICE-funded beds that are occupied by criminal aliens",
        "Bed-days used by people with a prior conviction, as a percent of the bed-days the field "
        "offices' facilities offered over the period: from --since (or the first custody) to "
        "the latest case step, on the field offices' clock.",
        "%",
        _ice("criminal_alien_bed_days"),
        _ice("bed_days_available"),
    ),
    Measure(
        "eligible_detainees_in_atd_pct",
        "3.2",
        "Percent of eligible detainees in Alternatives to Detention program",
        "ICE arrests placed in ATD as a percent of ICE arrests eligible for it (no prior "
        "conviction, not charged with a Level 1 offense, low flight risk); eligible people go "
        "to a bed when the office's ATD slots are full.",
        "%",
        _ice("atd_placements"),
        _ice("atd_eligible_arrests"),
    ),
    Measure(
        "programs_in_performance_review",
        "3.3",
        "Number of programs participating in integrated performance reviews",
        "The criminal alien programs the federation runs whose records this review read and "
        "that had work in the period: LESC's integrated record checks (an IAQ received) and "
        "the Criminal Alien Program at each field office (a case step). The review is this "
        "report; a program whose service did not answer is not in it.",
        "count",
        (REVIEW, "programs_reviewed"),
    ),
    Measure(
        "programs_achieving_priority_targets_pct",
        "3.3",
        "Percent of criminal alien programs achieving priority targets",
        "Of the reviewed programs that had Level 1 work in the period, those that met their "
        "priority target (the Plan's priority is Level 1 first): LESC answered at least 95 % "
        "of its Level 1 IARs within its answer target; a field office took at least 95 % of "
        "its Level 1 detainers' subjects into custody or ATD before the hold expired.",
        "%",
        (REVIEW, "programs_achieving_priority_target"),
        (REVIEW, "programs_with_priority_work"),
    ),
)

# Goal 3.3: each program's priority target, a percent the program's Level 1 figure must reach.
PRIORITY_TARGET_PCT = 95.0
_OFFICE_STEPS = re.compile(r"^office_(.+)_steps$")


def review_programs(counts: Counts) -> list[dict[str, Any]]:
    """Goal 3.3's integrated performance review: each program with work in the period, its
    priority figure (Level 1 first) against its target; `met` is None where the program had no
    Level 1 work (its target does not apply). LESC's integrated record checks: Level 1 IARs
    answered within the answer target. The Criminal Alien Program at each field office: Level 1
    detainers whose subject was taken into custody or ATD, of those taken or lapsed."""
    rows: list[dict[str, Any]] = []

    def add(program: str, service: str, target: str, done: float, of: float) -> None:
        value = round(100.0 * done / of, 1) if of else None
        met = None if value is None else value >= PRIORITY_TARGET_PCT
        rows.append(
            {
                "program": program,
                "service": service,
                "priority_target": target,
                "target_pct": PRIORITY_TARGET_PCT,
                "numerator": int(done),
                "denominator": int(of),
                "value_pct": value,
                "met": met,
            }
        )

    lesc = counts.get(Agency.LESC, {})
    if lesc.get("iaq", 0):
        answered = lesc.get("level_1_iar", 0)
        add(
            "LESC integrated record checks",
            Agency.LESC,
            "Level 1 IARs answered within the answer target",
            answered - lesc.get("level_1_iar_late", 0),
            answered,
        )
    ice = counts.get(Agency.ICE_FIELD, {})
    offices = sorted(m.group(1) for key in ice if (m := _OFFICE_STEPS.match(key)) and ice[key])
    for office in offices:
        taken = ice.get(f"office_{office}_level_1_taken", 0)
        add(
            f"Criminal Alien Program, field office {office}",
            Agency.ICE_FIELD,
            "Level 1 detainers' subjects taken into custody or ATD before the hold expired",
            taken,
            taken + ice.get(f"office_{office}_level_1_lapsed", 0),
        )
    return rows


def _review_counts(counts: Counts) -> dict[str, float]:
    rows = review_programs(counts)
    return {
        "programs_reviewed": len(rows),
        "programs_with_priority_work": sum(1 for r in rows if r["met"] is not None),
        "programs_achieving_priority_target": sum(1 for r in rows if r["met"]),
    }


def _derived(counts: Counts) -> dict[str, dict[str, float]]:
    """Counts that combine two services: timely answers need the SIB's and LESC's."""
    sib = dict(counts.get(Agency.SIB, {}))
    lesc = counts.get(Agency.LESC, {})
    sib["interoperability_answers"] = sib.get("no_match_idr", 0) + lesc.get("iar", 0)
    sib["timely_answers"] = (
        sib.get("no_match_idr", 0) + lesc.get("iar", 0) - lesc.get("iar_late", 0)
    )
    merged = {**{k: dict(v) for k, v in counts.items()}, Agency.SIB: sib}
    merged[REVIEW] = _review_counts(counts)
    return merged


# Counts made of several services' records (see `_derived`): the services each needs.
DERIVED_FROM: dict[tuple[str, str], tuple[Agency, ...]] = {
    (Agency.SIB, "interoperability_answers"): (Agency.SIB, Agency.LESC),
    (Agency.SIB, "timely_answers"): (Agency.SIB, Agency.LESC),
    **{
        (REVIEW, name): (Agency.LESC, Agency.ICE_FIELD)
        for name in (
            "programs_reviewed",
            "programs_with_priority_work",
            "programs_achieving_priority_target",
        )
    },
}


def _sources(m: Measure) -> set[str]:
    """The services whose records a measure reads."""
    parts = [m.numerator] if m.denominator is None else [m.numerator, m.denominator]
    return {str(a) for part in parts for a in DERIVED_FROM.get(part, (part[0],))}


def compute(counts: Counts, unreadable: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every measure with its definition, value (None when its denominator is 0) and inputs.

    A measure that reads a service in `unreadable` (an external agency without our HTTP edge)
    has no value and names the services in its `unreadable`, rather than counting them as 0.
    """
    merged = _derived(counts)
    left_out = set(unreadable)
    results: list[dict[str, Any]] = []
    for m in MEASURES:
        missing = sorted(_sources(m) & left_out)
        row: dict[str, Any] = {
            "key": m.key,
            "goal": m.goal,
            "measure": m.name,
            "definition": m.definition,
            "unit": m.unit,
        }
        if missing:
            none = {"value": None, "numerator": None, "denominator": None}
            results.append({**row, **none, "unreadable": missing})
            continue
        numerator = merged.get(m.numerator[0], {}).get(m.numerator[1], 0)
        value: float | None
        if m.denominator is None:
            denominator = None
            value = numerator
        else:
            denominator = merged.get(m.denominator[0], {}).get(m.denominator[1], 0)
            if not denominator:
                value = None
            elif m.unit == "%":
                value = round(100.0 * numerator / denominator, 1)
            else:
                value = round(numerator / denominator, 2)
        results.append({**row, "value": value, "numerator": numerator, "denominator": denominator})
    return results


async def counts_online(
    urls: Mapping[str, str], since: datetime | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Asks each running service's HTTP edge for its counts; also returns the services whose
    counts could not be read, with why (no URL, not reached, or no `/v1/measures` there).
    Raises RuntimeError when none could."""
    params = {} if since is None else {"since": since.isoformat()}
    result: dict[str, dict[str, float]] = {}
    unreadable: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=30.0) as client:
        for name in SOURCES:
            url = urls.get(name)
            if url is None:
                unreadable[name] = "no HTTP edge given"
                continue
            try:
                r = await client.get(f"{url.rstrip('/')}/v1/measures", params=params)
            except httpx.HTTPError as exc:
                unreadable[name] = f"{url} did not answer: {exc!r}"
                continue
            if r.status_code != 200:
                unreadable[name] = f"{url}: HTTP {r.status_code} {r.text[:200]}"
                continue
            result[name] = {k: float(v) for k, v in r.json().items()}
    if not result:
        reasons = "; ".join(f"{name}: {why}" for name, why in unreadable.items())
        raise RuntimeError(f"no service's counts could be read: {reasons}")
    return result, unreadable


async def counts_offline(
    databases: OfflineDatabases, since: datetime | None = None
) -> dict[str, dict[str, float]]:
    """Reads the counts straight from the services' databases (the federation may be stopped)."""

    async def count(agency: Agency, db: Database) -> dict[str, float]:
        async with db.session() as session:
            return await SOURCES[agency](session, since)

    per_agency = await databases.read_each(SOURCES, count)
    return {agency: counts for agency, counts in per_agency.items()}


def format_value(row: Mapping[str, Any]) -> str:
    """A measure's value as printed: '-' when there is nothing to measure yet."""
    value = row["value"]
    if row.get("unreadable"):
        return f"- (not read: {', '.join(row['unreadable'])})"
    if value is None:
        return "- (none yet)"
    if row["unit"] == "%":
        return f"{value:.1f}%"
    if row["unit"] == "days":
        return f"{value:.1f} days"
    return f"{value:g}"


_PHASE_KEY = re.compile(r"^rollout_phase_([0-9]+)_jurisdictions$")


def _day(value: float) -> str | None:
    """YYYY-MM-DD from a YYYYMMDD count (None for 0: no day)."""
    if not value:
        return None
    return iso_day(f"{int(value):08d}")


def rollout_by_phase(counts: Counts) -> list[dict[str, Any]]:
    """Coverage by rollout phase from the SIB's counts: each phase of the Plan (Appendix B,
    services/world/rollout.py) with its fiscal year and target, then any other phase
    registered, then phase 0 (jurisdictions no phase activates); empty when no rollout plan
    is registered. Per phase: jurisdictions, their share of the criminal alien population
    (and the cumulative share, phase by phase, against the target), the first and last
    activation day, and the bookings taken with and without the IDENT search."""
    sib = counts.get(Agency.SIB, {})
    registered = {int(m.group(1)) for key in sib if (m := _PHASE_KEY.match(key))}
    if not registered - {0}:
        return []
    plan = {p.phase: p for p in PLAN_PHASES}
    phases = sorted((registered | set(plan)) - {0}) + ([0] if 0 in registered else [])
    rows: list[dict[str, Any]] = []
    cumulative = 0.0
    for n in phases:
        key = f"rollout_phase_{n}"
        spec = plan.get(n)
        share = 100.0 * sib.get(f"{key}_criminal_alien_share", 0.0)
        if n:
            cumulative += share
        bookings = int(sib.get(f"{key}_bookings", 0))
        searched = int(sib.get(f"{key}_bookings_checked_against_ident", 0))
        target = spec.target_pct if spec is not None and n else None
        rows.append(
            {
                "phase": n,
                "fiscal_year": f"FY{spec.target_by.year}" if spec is not None and n else None,
                "target_pct": target,
                "jurisdictions": int(sib.get(f"{key}_jurisdictions", 0)),
                "share_pct": round(share, 1),
                "cumulative_share_pct": round(cumulative, 1) if n else None,
                "target_met": None if target is None else round(cumulative, 6) >= target,
                "first_activation": _day(sib.get(f"{key}_first_activation", 0)),
                "last_activation": _day(sib.get(f"{key}_last_activation", 0)),
                "bookings": bookings,
                "bookings_with_ident_search": searched,
                "bookings_without_ident_search": bookings - searched,
            }
        )
    return rows
