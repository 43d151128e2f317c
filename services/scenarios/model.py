"""The scenario file: its schema (pydantic), and loading it from TOML or YAML.

A malformed file raises `ScenarioFileError`, whose message names the file and the field (and
the line, where the parser knows it), so `scfed scenario run` can exit 2 with it.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ..federation import parse_agency
from ..ice_field.models import CaseState
from ..runtime.clock import parse_duration
from ..runtime.faults import FaultSpec
from ..runtime.formats import NCIC_CODE_PATTERN, ORI_PATTERN, YYYYMMDD_PATTERN
from ..world.rollout import PLAN_PHASES, PhaseSpec, check_phases
from ..world.world import IMMIGRATION_STATUSES, MOA_STATUSES

MoaStatus = Literal["ACTIVE", "SUSPENDED", "NOT_SIGNED", "TERMINATION_NOTICED"]
assert set(MoaStatus.__args__) == set(MOA_STATUSES)  # type: ignore[attr-defined]


class ScenarioFileError(ValueError):
    """The scenario file cannot be read or does not describe a valid scenario."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matching(pattern: re.Pattern[str], value: str, rule: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{rule}, got {value!r}")
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class StateIn(_Strict):
    """A participating state and its SIB."""

    code: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = ""
    nff: bool = False
    relay_capable: bool = True
    moa: MoaStatus = "ACTIVE"
    sib_ori: str = ""

    @model_validator(mode="after")
    def _default_sib_ori(self) -> StateIn:
        if not self.sib_ori:
            object.__setattr__(self, "sib_ori", f"{self.code}SIB0000")
        if not ORI_PATTERN.fullmatch(self.sib_ori):
            raise ValueError(f"sib_ori must match [A-Z]{{2}}[A-Z0-9]{{7}}, got {self.sib_ori!r}")
        return self


class AgencyIn(_Strict):
    """A booking law enforcement agency; `activated_on` (YYYYMMDD) dates its activation, as
    a rollout phase (`rollout_phase`) would: bookings with an earlier DOA get criminal-history
    processing only."""

    ori: str
    name: str = ""
    activated: bool = True
    activated_on: str = Field(default="", pattern=r"^([0-9]{8})?$")
    rollout_phase: int = Field(default=0, ge=0)

    @field_validator("ori")
    @classmethod
    def _ori(cls, value: str) -> str:
        return _matching(ORI_PATTERN, value, "ORI must match [A-Z]{2}[A-Z0-9]{7}")

    @field_validator("activated_on")
    @classmethod
    def _calendar_day(cls, value: str) -> str:
        if value:
            _day(value)
        return value


def _day(value: str) -> date:
    """The calendar day of a YYYYMMDD string (ValueError naming it when there is none)."""
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date YYYYMMDD") from None


class PhaseIn(_Strict):
    """A phase of the national rollout plan: its first and last day (YYYYMMDD) and the
    percent of the criminal alien population covered by its last day."""

    starts: str
    target_by: str
    target_pct: float = Field(gt=0, le=100)

    @field_validator("starts", "target_by")
    @classmethod
    def _calendar_day(cls, value: str) -> str:
        _day(value)
        return value


class RolloutIn(_Strict):
    """The national rollout plan of a scenario's world (services/world/rollout.py): phases in
    order (default: the Strategic Plan's, Appendix B), over the world's fixed agencies weighed
    by their booking volume. Only where the file leaves out [[agencies]]; agencies of the file
    date their activation themselves (`activated_on`)."""

    phases: list[PhaseIn] | None = None

    def phase_specs(self) -> tuple[PhaseSpec, ...]:
        """The phases as the world's rollout plan takes them."""
        if self.phases is None:
            return PLAN_PHASES
        return tuple(
            PhaseSpec(n, _day(p.starts), _day(p.target_by), p.target_pct)
            for n, p in enumerate(self.phases, start=1)
        )

    @model_validator(mode="after")
    def _phases(self) -> RolloutIn:
        check_phases(self.phase_specs())
        return self


class FieldOfficeIn(_Strict):
    """An ICE field office: the states of its area of responsibility and its beds."""

    ori: str
    name: str = ""
    states: list[str] = Field(min_length=1)
    beds: int = Field(default=20, ge=0)

    @field_validator("ori")
    @classmethod
    def _ori(cls, value: str) -> str:
        return AgencyIn._ori(value)


class ImmigrationIn(_Strict):
    """What IDENT holds on a person: an immigration status and an A-number."""

    status: str
    a_number: str = Field(default="A123456789", pattern=r"^(A[0-9]{9})?$")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in IMMIGRATION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(IMMIGRATION_STATUSES)}")
        return value


class ConvictionIn(_Strict):
    """One prior conviction on the person's criminal record."""

    ncic: str
    sentence_days: int = Field(default=365, ge=0, le=3650)

    @field_validator("ncic")
    @classmethod
    def _ncic(cls, value: str) -> str:
        return _matching(NCIC_CODE_PATTERN, value, "NCIC code must be four digits")


class PersonIn(_Strict):
    """A synthetic person: descriptors, what IDENT and IAFIS know, fingers missing."""

    name: str = ""
    sex: Literal["M", "F", "X"] = "M"
    dob: str = Field(default="19800101", pattern=YYYYMMDD_PATTERN.pattern)
    # Absent: unknown to IDENT.
    ident: ImmigrationIn | None = None
    # Prior convictions; absent or empty: no criminal record.
    record: list[ConvictionIn] = Field(default_factory=list)
    # Amputated fingers, positions 1-10.
    missing_fingers: list[Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=list)


class Expect(_Strict):
    """What a booking should come to; each field given is one expectation, checked once."""

    transaction: Literal["CAR", "CPI"] | None = None
    status: Literal["answered", "refused"] | None = None
    sre: Literal["I", "N"] | None = None
    ident_search: bool | None = None
    no_ident_search_because: (
        Literal[
            "moa_suspended",
            "moa_not_signed",
            "moa_terminated",
            "jurisdiction_not_activated",
            "jurisdiction_suspended",
        ]
        | None
    ) = None
    ident_match: bool | None = None
    idr_relayed: bool | None = None
    immigration_status: str | None = None
    removable: bool | None = None
    offense_level: int | None = Field(default=None, ge=1, le=3)
    priority: int | None = Field(default=None, ge=0, le=3)
    detainer: bool | None = None
    # How many I-247s for the booking reached the LEA (1 even when acknowledgements were lost).
    detainers: int | None = Field(default=None, ge=0)
    detainer_basis: Literal["LEVEL_1", "PRIOR_LEVEL_1", "DISCRETION"] | None = None
    detainer_within: str | None = None
    case_state: CaseState | None = None

    @field_validator("immigration_status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is not None and value not in IMMIGRATION_STATUSES:
            raise ValueError(f"must be one of {', '.join(IMMIGRATION_STATUSES)}")
        return value

    @field_validator("detainer_within")
    @classmethod
    def _within(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    def given(self) -> dict[str, Any]:
        """The expectations set, in the order the fields are declared."""
        return self.model_dump(exclude_none=True, mode="json")


class BookStep(_Strict):
    """An LEA books a person: `book` names the booking for later steps."""

    book: str = Field(pattern=r"^[A-Za-z0-9_-]{1,20}$")
    person: str
    agency: str
    charges: list[str] = Field(min_length=1)
    doa: str = Field(default="20091015", pattern=YYYYMMDD_PATTERN.pattern)
    expect: Expect = Field(default_factory=Expect)

    @field_validator("charges")
    @classmethod
    def _charges(cls, value: list[str]) -> list[str]:
        for code in value:
            ConvictionIn._ncic(code)
        return value


class AdvanceStep(_Strict):
    """Agency time moves on by a duration ("48h", "P2D") on every agency's clock."""

    advance: str

    @field_validator("advance")
    @classmethod
    def _advance(cls, value: str) -> str:
        return _duration(value)


class ReleaseStep(_Strict):
    """The LEA tells ICE it will release the subject of a booking under detainer, `after`
    this much agency time from now."""

    release: str
    after: str = "0h"

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        return _duration(value)


class CheckStep(_Strict):
    """Checks a booking's expectations again, now (after clock steps, release notices)."""

    check: str
    expect: Expect


class MoaStep(_Strict):
    """A party changes a state's MOA status at once (suspension, notice of termination)."""

    moa: MoaStatus
    state: str = Field(pattern=r"^[A-Z]{2}$")


class SuspendStep(_Strict):
    """A party to the MOA suspends one jurisdiction's interoperability at once (MOA VIII:
    racial or ethnic profiling), apart from its state's MOA status."""

    suspend: str
    by: Literal["SIB", "ICE"] = "ICE"
    reason: str = Field(default="racial or ethnic profiling (MOA VIII)", min_length=1)

    @field_validator("suspend")
    @classmethod
    def _ori(cls, value: str) -> str:
        return _matching(ORI_PATTERN, value, "an ORI is nine characters A-Z and 0-9")


class ResumeStep(_Strict):
    """The party that suspended a jurisdiction lifts the suspension."""

    resume: str
    by: Literal["SIB", "ICE"] = "ICE"

    @field_validator("resume")
    @classmethod
    def _ori(cls, value: str) -> str:
        return _matching(ORI_PATTERN, value, "an ORI is nine characters A-Z and 0-9")


def _target(value: str) -> str:
    """An agency's name, or "all"."""
    if value != "all":
        parse_agency(value)
    return value


class FaultStep(FaultSpec):
    """A fault rule put in force on one service (`fault` names it) or on "all", with the rule's
    fields beside it (runtime/faults.py): it acts until a `clear_faults` step, its count or its
    expiry. The runner waits for the federation to be quiet after each step, so a rule that
    holds messages back (a partition) needs its `clear_faults` before the next expectation."""

    fault: str

    @field_validator("fault")
    @classmethod
    def _fault(cls, value: str) -> str:
        return _target(value)


class ClearFaultsStep(_Strict):
    """Clears the fault rules of one service, or of "all"."""

    clear_faults: str

    @field_validator("clear_faults")
    @classmethod
    def _clear(cls, value: str) -> str:
        return _target(value)


STEP_KINDS: tuple[str, ...] = (
    "book",
    "advance",
    "release",
    "check",
    "moa",
    "suspend",
    "resume",
    "fault",
    "clear_faults",
)


def _step_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, dict):
        return None
    kinds = [k for k in STEP_KINDS if k in value]
    return kinds[0] if len(kinds) == 1 else None


Step = Annotated[
    Annotated[BookStep, Tag("book")]
    | Annotated[AdvanceStep, Tag("advance")]
    | Annotated[ReleaseStep, Tag("release")]
    | Annotated[CheckStep, Tag("check")]
    | Annotated[MoaStep, Tag("moa")]
    | Annotated[SuspendStep, Tag("suspend")]
    | Annotated[ResumeStep, Tag("resume")]
    | Annotated[FaultStep, Tag("fault")]
    | Annotated[ClearFaultsStep, Tag("clear_faults")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of the keys " + ", ".join(STEP_KINDS),
    ),
]


class ScenarioSpec(_Strict):
    """A whole scenario: the world, the people, and the steps in order."""

    name: str = ""
    description: str = ""
    seed: int = Field(default=1, ge=0)
    # Where every agency's manual clock starts (ISO 8601, UTC when no offset is given).
    start: str = "2009-11-02T09:00:00+00:00"
    # Absent sections: the synthetic world's own (services/world/world.py).
    states: list[StateIn] | None = None
    agencies: list[AgencyIn] | None = None
    field_offices: list[FieldOfficeIn] | None = None
    # The world's national rollout plan; absent: every agency as its own flag and day say.
    rollout: RolloutIn | None = None
    people: dict[str, PersonIn] = Field(default_factory=dict)
    # Fault rules in force from the start, as `fault` steps before the first step would be.
    faults: list[FaultStep] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> ScenarioSpec:
        """Every step names a person, agency, state and booking the file defines."""
        from ..world.world import AGENCIES, STATES

        if self.rollout is not None and self.agencies is not None:
            raise ValueError(
                "rollout: plans the world's own agencies; with [[agencies]], date each one's "
                "activation with activated_on instead"
            )
        oris = {a.ori for a in self.agencies} if self.agencies is not None else None
        oris = oris if oris is not None else {a.ori for a in AGENCIES}
        states = {s.code for s in self.states} if self.states is not None else None
        states = states if states is not None else {s.code for s in STATES}
        booked: set[str] = set()
        for i, step in enumerate(self.steps):
            where = f"steps.{i}"
            if isinstance(step, BookStep):
                if step.person not in self.people:
                    raise ValueError(f"{where}.person: no person {step.person!r} in [people]")
                if step.agency not in oris:
                    raise ValueError(f"{where}.agency: no agency with ORI {step.agency!r}")
                if step.agency[:2] not in states:
                    raise ValueError(f"{where}.agency: no state {step.agency[:2]!r}")
                if step.book in booked:
                    raise ValueError(f"{where}.book: booking {step.book!r} named twice")
                booked.add(step.book)
            elif isinstance(step, ReleaseStep | CheckStep):
                name = step.release if isinstance(step, ReleaseStep) else step.check
                key = "release" if isinstance(step, ReleaseStep) else "check"
                if name not in booked:
                    raise ValueError(f"{where}.{key}: no earlier booking {name!r}")
            elif isinstance(step, MoaStep) and step.state not in states:
                raise ValueError(f"{where}.state: no state {step.state!r}")
            elif isinstance(step, SuspendStep | ResumeStep):
                ori = step.suspend if isinstance(step, SuspendStep) else step.resume
                key = "suspend" if isinstance(step, SuspendStep) else "resume"
                if ori not in oris:
                    raise ValueError(f"{where}.{key}: no agency with ORI {ori!r}")
        return self


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


_ARRAY_TABLES = ("steps", "states", "agencies", "field_offices")


def _toml_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of a TOML file where the field at `loc` is (or its table starts), if found."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    rest = list(loc)
    if len(rest) > 1 and rest[0] in _ARRAY_TABLES and isinstance(rest[1], int):
        headers = [n for n, line in enumerate(lines) if re.match(rf"\s*\[\[{rest[0]}\]\]", line)]
        if rest[1] >= len(headers):
            return None
        start = headers[rest[1]]
        following = [n for n, line in enumerate(lines) if n > start and line.startswith("[[")]
        end = following[0] if following else len(lines)
        rest = rest[2:]
        if loc[0] == "steps" and rest and rest[0] in STEP_KINDS:
            rest = rest[1:]
    elif len(rest) > 1 and rest[0] == "people":
        name = re.escape(str(rest[1]))
        found = [
            n
            for n, line in enumerate(lines)
            if re.match(rf"\s*(\[people\.{name}[\].]|{name}\s*=)", line)
        ]
        if not found:
            return None
        start, rest = found[0], rest[2:]
    for key in rest:
        if not isinstance(key, str):
            continue
        pattern = re.compile(rf"(^|[\s{{,.\[]){re.escape(key)}(\s*=|\])")
        hit = next((n for n in range(start, end) if pattern.search(lines[n])), None)
        if hit is None:
            break
        start = hit
    return start + 1 if loc else None


def _describe(error: ValidationError, text: str, suffix: str) -> str:
    lines = []
    for e in error.errors():
        loc = tuple(e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        named = re.match(r"^([\w.]+): (.*)$", message, re.S)
        if not loc and named:
            # A cross-reference check names its own field ("steps.2.person: ...").
            loc = tuple(int(p) if p.isdigit() else p for p in named.group(1).split("."))
            message = named.group(2)
        line = _toml_line(text, loc) if suffix == ".toml" else None
        at = f"line {line}: " if line else ""
        lines.append(f"  {at}{_location(loc)}: {message}")
    return "\n".join(lines)


def parse_text(text: str, *, suffix: str, source: str = "<scenario>") -> ScenarioSpec:
    """A scenario from TOML (suffix ".toml") or YAML (".yaml", ".yml") text."""
    data: Any
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioFileError(f"{source}: not valid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScenarioFileError(f"{source}: not valid YAML: {exc}") from None
    else:
        raise ScenarioFileError(f"{source}: a scenario file ends in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{source}: a scenario is a table of keys at the top level")
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        count = exc.error_count()
        raise ScenarioFileError(
            f"{source}: {count} problem{'s' if count > 1 else ''}:\n{_describe(exc, text, suffix)}"
        ) from None


def load_scenario(path: Path) -> ScenarioSpec:
    """Reads and validates a scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_text(text, suffix=path.suffix.lower(), source=str(path))
