"""Runs a scenario on a federation of its own and checks every expectation it states.

The federation runs in this process (five hosts on loopback, free ports, SQLite in a temporary
folder), every agency on one manual clock that starts at the scenario's `start`: agency time
moves only at an `advance` step, so "advance 48h" and "within 2h" are exact. After each step the
runner waits until the federation is quiet (the booking final, no outbox holding work), then
reads what happened the way an LEA and an operator would: the SIB's booking view and the LEA's
inbox, IDENT's journal, the SIB's states, and the field office's detainer record.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx

from scfed.ice_field.v1 import ice_field_pb2, ice_field_pb2_grpc
from scfed.sib.v1 import sib_pb2, sib_pb2_grpc

from ..federation import Agency
from ..runtime.clock import ManualClock, parse_duration
from ..sib.models import FINISHED
from ..testing.federation import DatabaseChoice, Federation, running_federation
from ..world.seeding import seed_world
from ..world.tenprints import SyntheticFingerprints
from ..world.world import (
    AGENCIES,
    FIELD_OFFICES,
    LESC_STAFFING,
    STATES,
    AgencySpec,
    FacilitySpec,
    FieldOfficeSpec,
    StateSpec,
    World,
    rollout_agencies,
)
from .model import (
    AdvanceStep,
    BookStep,
    CheckStep,
    ClearFaultsStep,
    Expect,
    FaultStep,
    MoaStep,
    ReleaseStep,
    ResumeStep,
    ScenarioSpec,
    SuspendStep,
)
from .subjects import Subject, SubjectMaker, enroll_in_iafis, enroll_in_ident

# How long a step may take to settle (machine time) before the runner reports what it saw.
SETTLE_TIMEOUT_S = 20.0
# How long a case-state expectation waits for the field office to reach the state.
CASE_WAIT_S = 3.0
_POLL_S = 0.02


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation of one booking at one step: met or not, and what was seen."""

    # The step's number in the file, from 1.
    step: int
    booking: str
    expectation: str
    expected: Any
    seen: Any
    met: bool
    detail: str = ""

    def line(self) -> str:
        """One line for a person: what was expected, and what was seen instead."""
        where = f"step {self.step} booking {self.booking}"
        wanted = f"{self.expectation} = {_show(self.expected)}"
        if self.met:
            return f"met    {where}: {wanted}"
        seen = f"saw {_show(self.seen)}" + (f" ({self.detail})" if self.detail else "")
        return f"UNMET  {where}: {wanted}; {seen}"


@dataclass
class ScenarioResult:
    """Every expectation of one scenario, in order, and how long the run took."""

    name: str
    source: str
    results: list[ExpectationResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        """True when every expectation was met."""
        return all(r.met for r in self.results)

    def as_json(self) -> dict[str, Any]:
        """The result as plain JSON."""
        return {
            "name": self.name,
            "source": self.source,
            "met": self.met,
            "expectations": len(self.results),
            "unmet": sum(not r.met for r in self.results),
            "seconds": round(self.seconds, 2),
            "results": [asdict(r) for r in self.results],
        }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _suffix(value: str, prefix: str) -> str:
    return value.removeprefix(prefix) if value else ""


def _level(value: Any) -> int:
    """1..3 from "OFFENSE_LEVEL_1" (0 when unspecified or absent)."""
    text = str(value or "")
    return int(text[-1]) if text[-1:].isdigit() else 0


def _world(spec: ScenarioSpec) -> World:
    """The fixed parts of the scenario's world: its states, agencies and field offices."""
    states = (
        STATES
        if spec.states is None
        else tuple(
            StateSpec(s.code, s.name or s.code, s.nff, s.relay_capable, s.moa, s.sib_ori)
            for s in spec.states
        )
    )
    agencies = (
        AGENCIES
        if spec.agencies is None
        else tuple(
            AgencySpec(
                a.ori,
                a.name or a.ori,
                a.ori[:2],
                a.activated,
                activated_on=a.activated_on,
                rollout_phase=a.rollout_phase,
            )
            for a in spec.agencies
        )
    )
    plan = None
    if spec.rollout is not None:
        # The scenario's world books nobody of its own: booking volume weighs the agencies.
        plan, agencies = rollout_agencies(agencies, (), (), spec.rollout.phase_specs())
    offices = (
        FIELD_OFFICES
        if spec.field_offices is None
        else tuple(
            FieldOfficeSpec(
                o.ori,
                o.name or o.ori,
                tuple(o.states),
                (FacilitySpec(f"{o.ori}-BEDS", f"{o.name or o.ori} beds", o.beds),),
            )
            for o in spec.field_offices
        )
    )
    return World(
        seed=spec.seed,
        states=states,
        agencies=agencies,
        field_offices=offices,
        lesc_staffing=LESC_STAFFING,
        persons=(),
        bookings=(),
        fingerprints=SyntheticFingerprints(),
        rollout=plan,
    )


def _party(name: str) -> sib_pb2.SuspendingParty.ValueType:
    return sib_pb2.SuspendingParty.Value(f"SUSPENDING_PARTY_{name}")


def start_time(spec: ScenarioSpec) -> datetime:
    """Where the scenario's manual clock starts."""
    start = datetime.fromisoformat(spec.start)
    return start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)


@dataclass
class _Booking:
    name: str
    tcn: str
    ori: str


@dataclass
class _Run:
    """One scenario's run on one federation."""

    spec: ScenarioSpec
    fed: Federation
    client: httpx.AsyncClient
    subjects: dict[str, Subject] = field(default_factory=dict)
    bookings: dict[str, _Booking] = field(default_factory=dict)
    results: list[ExpectationResult] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return self.fed.http_urls()

    async def _get(self, agency: Agency, path: str, **params: Any) -> Any:
        r = await self.client.get(f"{self.urls[agency]}{path}", params=params)
        r.raise_for_status()
        return r.json()

    async def _eventually(self, check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if await check():
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(_POLL_S)

    async def quiet(self) -> None:
        """Waits until every booking is final and no outbox holds work, twice in a row."""

        async def idle() -> bool:
            outboxes, views = await asyncio.gather(
                asyncio.gather(*(self._get(agency, "/v1/outbox") for agency in Agency)),
                asyncio.gather(
                    *(
                        self._get(Agency.SIB, f"/v1/bookings/{b.tcn}")
                        for b in self.bookings.values()
                    )
                ),
            )
            return not any(s["pending"] or s["inflight"] for s in outboxes) and all(
                v["status"] in FINISHED for v in views
            )

        async def twice() -> bool:
            if not await idle():
                return False
            await asyncio.sleep(_POLL_S * 2)
            return await idle()

        await self._eventually(twice, SETTLE_TIMEOUT_S)

    async def people(self) -> None:
        """Makes every person and enrolls them where the file says."""
        maker = SubjectMaker(seed=self.spec.seed)
        addresses = self.fed.addresses()
        for key, person in self.spec.people.items():
            name = person.name or f"{key.upper().replace('_', '')[:30] or 'PERSON'},SCENARIO"
            subject = maker.subject(
                name, missing=person.missing_fingers, sex=person.sex, dob=person.dob
            )
            if person.ident is not None:
                await enroll_in_ident(
                    addresses, subject, person.ident.status, person.ident.a_number
                )
            if person.record:
                await enroll_in_iafis(
                    addresses, subject, [(c.ncic, c.sentence_days) for c in person.record]
                )
            self.subjects[key] = subject

    async def book(self, index: int, step: BookStep) -> None:
        """Posts the booking at the SIB edge, waits until all is quiet, checks it."""
        subject = self.subjects[step.person]
        number = f"SCN-{index + 1}-{step.book.replace('_', '-')}"
        body = subject.booking_body(step.agency, number, step.charges, doa=step.doa)
        r = await self.client.post(f"{self.urls[Agency.SIB]}/v1/bookings", json=body)
        if r.status_code != 202:
            raise RuntimeError(f"step {index + 1}: the SIB refused booking {step.book}: {r.text}")
        self.bookings[step.book] = _Booking(step.book, str(r.json()["tcn"]), step.agency)
        await self.quiet()
        await self.check(index, step.book, step.expect)

    async def advance(self, step: AdvanceStep) -> None:
        """Steps agency time through an agency's control edge (every agency shares the clock)."""
        r = await self.client.post(
            f"{self.urls[Agency.ICE_FIELD]}/v1/clock/advance", json={"duration": step.advance}
        )
        r.raise_for_status()
        await self.quiet()

    async def release(self, index: int, step: ReleaseStep) -> None:
        """The LEA's release notice for the booking's detainer, dated `after` from now."""
        booking = self.bookings[step.release]
        detainers = await self._detainers(booking)
        if not detainers:
            raise RuntimeError(
                f"step {index + 1}: booking {step.release} has no detainer to give notice of"
            )
        now = datetime.fromisoformat((await self._get(Agency.ICE_FIELD, "/v1/clock"))["now"])
        release_at = now + parse_duration(step.after)
        r = await self.client.post(
            f"{self.urls[Agency.SIB]}/v1/release-notices",
            json={
                "ori": booking.ori,
                "detainer_id": detainers[0]["body"]["detainer"]["detainer_id"],
                "release_at": release_at.isoformat(),
            },
        )
        if r.status_code != 202:
            raise RuntimeError(f"step {index + 1}: release notice refused: {r.text}")
        await self.quiet()

    async def moa(self, step: MoaStep) -> None:
        """Changes a state's MOA status at the SIB."""
        async with grpc.aio.insecure_channel(self.fed.addresses()[Agency.SIB]) as channel:
            await sib_pb2_grpc.StateIdentificationBureauStub(channel).SetMoaStatus(
                sib_pb2.SetMoaStatusRequest(
                    state=step.state, status=sib_pb2.MoaStatus.Value("MOA_STATUS_" + step.moa)
                )
            )

    async def suspend(self, step: SuspendStep) -> None:
        """A party suspends a jurisdiction at the SIB (MOA VIII)."""
        async with grpc.aio.insecure_channel(self.fed.addresses()[Agency.SIB]) as channel:
            await sib_pb2_grpc.StateIdentificationBureauStub(channel).SuspendJurisdiction(
                sib_pb2.SuspendJurisdictionRequest(
                    ori=step.suspend, by=_party(step.by), reason=step.reason
                )
            )

    async def resume(self, step: ResumeStep) -> None:
        """The suspending party lifts a jurisdiction's suspension at the SIB."""
        async with grpc.aio.insecure_channel(self.fed.addresses()[Agency.SIB]) as channel:
            await sib_pb2_grpc.StateIdentificationBureauStub(channel).ResumeJurisdiction(
                sib_pb2.ResumeJurisdictionRequest(ori=step.resume, by=_party(step.by))
            )

    def _targets(self, name: str) -> list[Agency]:
        return list(Agency) if name == "all" else [Agency(name)]

    async def fault(self, index: int, step: FaultStep) -> None:
        """Puts the step's fault rule in force on its service(s)."""
        rule = step.model_dump(mode="json", exclude={"fault"})
        for agency in self._targets(step.fault):
            r = await self.client.post(f"{self.urls[agency]}/v1/faults", json=rule)
            if r.status_code != 201:
                where = "faults" if index < 0 else f"steps.{index}"
                raise RuntimeError(f"{where}: {agency} refused the fault rule: {r.text}")

    async def clear_faults(self, index: int, step: ClearFaultsStep) -> None:
        """Clears the fault rules of the step's service(s)."""
        for agency in self._targets(step.clear_faults):
            r = await self.client.delete(f"{self.urls[agency]}/v1/faults")
            if r.status_code != 200:
                raise RuntimeError(f"steps.{index}: {agency} did not clear its faults: {r.text}")

    async def inbox(self, booking: _Booking) -> list[dict[str, Any]]:
        """Every message in the booking's LEA inbox about this booking, page by page."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self._get(
                Agency.SIB, f"/v1/agencies/{booking.ori}/messages", after=after, limit=1000
            )
            if not page:
                return found
            after = page[-1]["id"]
            found += [m for m in page if m["tcn"] == booking.tcn]

    async def _detainers(self, booking: _Booking) -> list[dict[str, Any]]:
        return [m for m in await self.inbox(booking) if m["kind"] == "I-247"]

    async def _case_state(self, detainer_id: str) -> str:
        async with grpc.aio.insecure_channel(self.fed.addresses()[Agency.ICE_FIELD]) as channel:
            record = await ice_field_pb2_grpc.IceFieldStub(channel).GetDetainer(
                ice_field_pb2.GetDetainerRequest(detainer_id=detainer_id)
            )
        return str(record.state)

    async def check(self, index: int, name: str, expect: Expect) -> None:
        """Checks every expectation given for booking `name`, now."""
        booking = self.bookings[name]
        seen = await _Observation.read(self, booking)
        for key, expected in expect.given().items():
            if key == "case_state":
                value, detail = await seen.case_state(self, str(expected))
            else:
                value, detail = seen.value(key, expected)
            met = value == expected if key != "detainer_within" else value is True
            shown = expected
            self.results.append(
                ExpectationResult(index + 1, name, key, shown, value, met, "" if met else detail)
            )


@dataclass
class _Observation:
    """What the federation shows of one booking at one moment."""

    view: dict[str, Any]
    inbox: list[dict[str, Any]]
    detainers: list[dict[str, Any]]
    ident_journal: list[dict[str, Any]]
    sib_journal: list[dict[str, Any]]
    state: dict[str, Any]
    activated: bool

    @classmethod
    async def read(cls, run: _Run, booking: _Booking) -> _Observation:
        """Reads the booking view, the LEA inbox, IDENT's journal and the SIB's state."""
        view = await run._get(Agency.SIB, f"/v1/bookings/{booking.tcn}")
        inbox = await run.inbox(booking)
        states = await run._get(Agency.SIB, "/v1/states")
        state: dict[str, Any] = next((s for s in states if s.get("code") == booking.ori[:2]), {})
        world = _world(run.spec)
        agency = next((a for a in world.agencies if a.ori == booking.ori), None)
        return cls(
            view=view,
            inbox=inbox,
            detainers=[m for m in inbox if m["kind"] == "I-247"],
            ident_journal=list(await run._get(Agency.IDENT, f"/v1/journal/{booking.tcn}")),
            sib_journal=list(await run._get(Agency.SIB, f"/v1/journal/{booking.tcn}")),
            state=state,
            activated=agency.activated if agency is not None else True,
        )

    def response(self, *kinds: str) -> dict[str, Any] | None:
        """The booking's first response of one of these kinds."""
        return next((r for r in self.view["responses"] if r["kind"] in kinds), None)

    def iar(self) -> dict[str, Any] | None:
        """The IAR of the joint IDR/IAR, if one came."""
        joint = self.response("IDR/IAR")
        return None if joint is None else dict(joint["body"]["joint"]["iar"])

    def _no_search_reason(self) -> str:
        # The SIB's journal of the booking says when the jurisdiction was suspended.
        if any("jurisdiction suspended by" in e.get("detail", "") for e in self.sib_journal):
            return "jurisdiction_suspended"
        moa = _suffix(str(self.state.get("moa_status", "")), "MOA_STATUS_").lower()
        if moa == "suspended":
            return "moa_suspended"
        if moa == "not_signed":
            return "moa_not_signed"
        if moa == "termination_noticed" and not self.view["expects_idr"]:
            return "moa_terminated"
        # Not activated by its flag, or not yet on the booking's DOA (its rollout day): the
        # SIB's journal of the booking names the closed gate.
        not_yet = any("jurisdiction not activated" in e.get("detail", "") for e in self.sib_journal)
        if not self.activated or not_yet:
            return "jurisdiction_not_activated"
        return f"no reason: MOA {moa or 'unknown'}, jurisdiction activated"

    def value(self, key: str, expected: Any) -> tuple[Any, str]:
        """What was seen for one expectation, and a note on where it came from."""
        kinds = [r["kind"] for r in self.view["responses"]]
        note = f"responses {kinds}, status {self.view['status']}"
        if key == "transaction":
            return self.view["transaction"], ""
        if key == "status":
            return self.view["status"], self.view.get("error", "")
        if key == "sre":
            sre = self.response("SRE")
            return ("no SRE" if sre is None else sre["body"].get("identification", "")), note
        searched = any(e.get("tot") == "IDENT-SEARCH" for e in self.ident_journal)
        if key == "ident_search":
            return searched, f"IDENT journal has {len(self.ident_journal)} entries"
        if key == "no_ident_search_because":
            if searched:
                return "IDENT searched", note
            return self._no_search_reason(), f"SIB state {self.state}"
        idr = self.response("IDR/IAR", "NO-MATCH-IDR")
        if key == "ident_match":
            return ("no IDR" if idr is None else idr["kind"] == "IDR/IAR"), note
        if key == "idr_relayed":
            if idr is None:
                return "no IDR", note
            in_inbox = any(m["kind"] == idr["kind"] for m in self.inbox)
            return bool(idr["relayed"]) and in_inbox, f"{idr['kind']} relayed={idr['relayed']}"
        iar = self.iar()
        if key in ("immigration_status", "removable", "offense_level", "priority"):
            if iar is None:
                return "no IAR", note
            if key == "immigration_status":
                return _suffix(str(iar.get("status", "")), "IMMIGRATION_STATUS_"), ""
            if key == "removable":
                return bool(iar.get("removable", False)), iar.get("removal_ground", "")
            if key == "priority":
                return int(iar.get("priority", 0)), ""
            levels = [
                n
                for n in (
                    _level(iar.get("current_charge_level")),
                    _level(iar.get("prior_conviction_level")),
                )
                if n
            ]
            detail = (
                f"current charges {iar.get('current_charge_level')}, "
                f"prior convictions {iar.get('prior_conviction_level')}"
            )
            return (min(levels) if levels else "no level"), detail
        detainer = self.detainers[0]["body"]["detainer"] if self.detainers else None
        if key == "detainer":
            return bool(self.detainers), f"LEA inbox kinds {[m['kind'] for m in self.inbox]}"
        if key == "detainers":
            return len(self.detainers), f"LEA inbox kinds {[m['kind'] for m in self.inbox]}"
        if detainer is None:
            return "no I-247", f"LEA inbox kinds {[m['kind'] for m in self.inbox]}"
        if key == "detainer_basis":
            return _suffix(str(detainer.get("basis", "")), "DETAINER_BASIS_"), ""
        if key == "detainer_within":
            accepted = datetime.fromisoformat(self.view["accepted_at"])
            arrived = datetime.fromisoformat(self.detainers[0]["received_at"])
            took = arrived - accepted
            within = took <= parse_duration(str(expected))
            return (True if within else f"I-247 after {_hours(took)}"), ""
        raise KeyError(key)

    async def case_state(self, run: _Run, expected: str) -> tuple[Any, str]:
        """The field office's state of the booking's case, waiting briefly for `expected`."""
        if not self.detainers:
            return "no I-247", f"LEA inbox kinds {[m['kind'] for m in self.inbox]}"
        detainer_id = str(self.detainers[0]["body"]["detainer"]["detainer_id"])
        state = ""

        async def reached() -> bool:
            nonlocal state
            state = await run._case_state(detainer_id)
            return state == expected

        await run._eventually(reached, CASE_WAIT_S)
        return state, f"detainer {detainer_id}"


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}h"


async def run_spec(spec: ScenarioSpec, *, source: str = "") -> ScenarioResult:
    """Runs a validated scenario on a federation of its own; returns every expectation's
    outcome. Raises RuntimeError when a step cannot be carried out at all."""
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="scfed-scenario-"))
    database = DatabaseChoice("sqlite", data_dir)
    clock = ManualClock(start_time(spec))
    settings: dict[str, dict[str, Any]] = {agency: {"clock": clock} for agency in Agency}
    settings[Agency.ICE_FIELD]["case_poll_s"] = 0.02
    # Keyed by agency only, so none collides with running_federation's own keywords.
    overrides: dict[str, Any] = settings
    result = ScenarioResult(name=spec.name or Path(source).stem, source=source)
    try:
        async with (
            running_federation(database, **overrides) as fed,
            httpx.AsyncClient(timeout=30.0) as client,
        ):
            await seed_world(_world(spec), fed.addresses())
            run = _Run(spec, fed, client)
            await run.people()
            for rule in spec.faults:
                await run.fault(-1, rule)
            for index, step in enumerate(spec.steps):
                if isinstance(step, BookStep):
                    await run.book(index, step)
                elif isinstance(step, AdvanceStep):
                    await run.advance(step)
                elif isinstance(step, ReleaseStep):
                    await run.release(index, step)
                elif isinstance(step, CheckStep):
                    await run.quiet()
                    await run.check(index, step.check, step.expect)
                elif isinstance(step, MoaStep):
                    await run.moa(step)
                elif isinstance(step, SuspendStep):
                    await run.suspend(step)
                elif isinstance(step, ResumeStep):
                    await run.resume(step)
                elif isinstance(step, FaultStep):
                    await run.fault(index, step)
                elif isinstance(step, ClearFaultsStep):
                    await run.clear_faults(index, step)
            result.results = run.results
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result
