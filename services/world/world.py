"""A deterministic synthetic world: the 2009 agencies, the people they book, and the bookings.

`build_world(seed, bookings)` draws everything from `np.random.default_rng(seed)` (fingers) and
`random.Random(seed)` (everything else), never from the wall clock, so a seed names one world.

Fixed parts: four states with their SIB (Texas is the only NFF state; New Mexico's SIB cannot
relay IDENT responses to its LEAs; Arizona's MOA is suspended), three law enforcement agencies
(LEAs) per state, one of which (Kern County, CA) is not yet activated, and three ICE field offices.

Drawn parts, for `bookings` = N:

- bookings 1..N, dated through 2009-2010 in sequence order, spread over every agency. About 80%
  book someone new; about 20% (from booking `rebook_gap` + 1 on) re-book someone whose latest
  booking is at least `rebook_gap` bookings earlier, usually at the same agency.
- each booked person: ~40% have an IDENT record (~10% of those naturalized citizens), ~40% a
  prior criminal history (arrests before 2009), independently.
- a background population that is never booked, so 1:N search is meaningful: about 2N people
  known only to IDENT and N known only to IAFIS (at least 20 of each).
- about 2% of all people have one or two amputated fingers.

Current charges are 1-3 codes from `CHARGE_POOL` (all three Appendix A levels, weighted toward
the less serious), all CHARGED with no sentence. Prior arrests carry convictions with sentences of
0-3650 days, dismissals, acquittals and a few charges never disposed.

Each booking also carries the day the LEA will release the subject, counted from when ICE learns
of the case: most (60%) go out pre-trial within 1-10 days (bond, dismissal, time served); the
rest serve part of the usual sentence of their most serious charge, 15-`MAX_LOCAL_CUSTODY_DAYS`
days. These days come from a stream of their own, so they never change the rest of a seed's
world.

LESC's 24x7 desk is staffed as `LESC_STAFFING` says: analysts per shift, handling times and the
answer target that the MOA's 24x7 response is measured against.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import accumulate
from typing import Any

import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2

from ..runtime.formats import NCIC_CODE_PATTERN, ORI_PATTERN, YYYYMMDD_PATTERN
from .rollout import PhaseSpec, RolloutPlan, plan_rollout
from .tenprints import SyntheticFingerprints

MOA_STATUSES: tuple[str, ...] = ("ACTIVE", "SUSPENDED", "NOT_SIGNED", "TERMINATION_NOTICED")
DISPOSITIONS: tuple[str, ...] = ("CHARGED", "CONVICTED", "DISMISSED", "ACQUITTED")
# Suffixes of the proto enum scfed.common.v1.ImmigrationStatus.
IMMIGRATION_STATUSES: tuple[str, ...] = (
    "NATURALIZED_CITIZEN",
    "LAWFUL_PERMANENT_RESIDENT",
    "NONIMMIGRANT_VISA",
    "VISA_OVERSTAY",
    "ENTRY_WITHOUT_INSPECTION",
    "FINAL_ORDER_OF_REMOVAL",
    "PROCEEDINGS_PENDING",
    "REFUGEE_OR_ASYLEE",
    "PREVIOUSLY_REMOVED",
)
ENCOUNTER_TYPES: tuple[str, ...] = (
    "POE-ADMISSION",
    "BORDER-APPREHENSION",
    "BENEFIT-APPLICATION",
    "REMOVAL-PROCEEDINGS",
    "REMOVAL",
)
MAX_SENTENCE_DAYS = 3650

REBOOK_RATE = 0.20
IDENT_RATE = 0.40
NATURALIZED_RATE = 0.10
HISTORY_RATE = 0.40
MISSING_FINGER_RATE = 0.02
MIN_BACKGROUND = 20

_BOOKINGS_START = date(2009, 1, 1).toordinal()
_BOOKING_DAYS = 730
_HISTORY_END = date(2008, 12, 31).toordinal()
_DAYS_PER_YEAR = 365.25
# Keeps enrollment captures apart from booking captures, which are seeded by [seed, seq].
_ENROLLMENT_STREAM = 0x454E524F
# Release days are drawn from a stream of their own per booking: Random(f"{seed}:{this}:{seq}").
_RELEASE_STREAM = 0x52454C45
PRETRIAL_RELEASE_RATE = 0.60
MAX_PRETRIAL_DAYS = 10
# Longest local custody after an ICE detainer in the synthetic world: keeps a demo's cases
# (on the field offices' accelerated clock) within seconds.
MAX_LOCAL_CUSTODY_DAYS = 120


def _check_ori(ori: str, what: str) -> None:
    if not ORI_PATTERN.fullmatch(ori):
        raise ValueError(f"{what} ORI must match [A-Z]{{2}}[A-Z0-9]{{7}}, got {ori!r}")


def _check_date(value: str, what: str) -> None:
    if not YYYYMMDD_PATTERN.fullmatch(value):
        raise ValueError(f"{what} must be YYYYMMDD, got {value!r}")


@dataclass(frozen=True)
class StateSpec:
    """A participating state and its State Identification Bureau."""

    code: str
    name: str
    nff: bool
    relay_capable: bool
    moa_status: str
    sib_ori: str

    def __post_init__(self) -> None:
        if self.moa_status not in MOA_STATUSES:
            raise ValueError(f"moa_status must be one of {MOA_STATUSES}, got {self.moa_status!r}")
        _check_ori(self.sib_ori, "SIB")


@dataclass(frozen=True)
class AgencySpec:
    """A booking law enforcement agency; `activated` once its jurisdiction joined (from
    `activated_on`, YYYYMMDD, when a rollout phase dates it)."""

    ori: str
    name: str
    state: str
    activated: bool
    activated_on: str = ""
    # The rollout phase that activates it (0: none), and its share of the criminal aliens.
    rollout_phase: int = 0
    criminal_alien_share: float = 0.0

    def __post_init__(self) -> None:
        _check_ori(self.ori, "agency")
        if self.activated_on:
            _check_date(self.activated_on, "activated_on")


@dataclass(frozen=True)
class FacilitySpec:
    """A detention facility and its ICE-funded beds."""

    facility_id: str
    name: str
    beds: int


@dataclass(frozen=True)
class LescStaffingSpec:
    """LESC's 24x7 desk: analysts on each shift and how long cases take, in agency minutes."""

    # "HH:MM=<analysts>" per shift start, the LESC setting SCFED_LESC_SHIFTS.
    shifts: str
    analyst_minutes: float
    vtc_minutes: float
    iar_target_minutes: float

    def settings(self) -> dict[str, str]:
        """The LESC environment settings that staff its desk this way."""
        return {
            "SCFED_LESC_SHIFTS": self.shifts,
            "SCFED_LESC_ANALYST_MINUTES": f"{self.analyst_minutes:g}",
            "SCFED_LESC_VTC_MINUTES": f"{self.vtc_minutes:g}",
            "SCFED_LESC_IAR_TARGET_MINUTES": f"{self.iar_target_minutes:g}",
        }

    def __post_init__(self) -> None:
        for what in ("analyst_minutes", "vtc_minutes", "iar_target_minutes"):
            if not getattr(self, what) > 0:
                raise ValueError(f"LESC staffing {what} must be positive")


@dataclass(frozen=True)
class FieldOfficeSpec:
    """An ICE field office, the states its area of responsibility covers, its facilities."""

    ori: str
    name: str
    states: tuple[str, ...]
    facilities: tuple[FacilitySpec, ...]
    # People it can supervise in Alternatives to Detention at once.
    atd_slots: int = 6
    # The U.S. Attorney's office it refers re-entry after removal to (the district of its seat).
    us_attorney_office: str = ""

    @property
    def bed_capacity(self) -> int:
        """ICE-funded beds in all its facilities."""
        return sum(f.beds for f in self.facilities)

    def __post_init__(self) -> None:
        _check_ori(self.ori, "field office")


@dataclass(frozen=True)
class ChargeSpec:
    """One charge: NCIC code, literal, disposition (DISPOSITIONS) and sentence in days."""

    ncic_code: str
    literal: str
    disposition: str
    sentence_days: int

    def __post_init__(self) -> None:
        if not NCIC_CODE_PATTERN.fullmatch(self.ncic_code):
            raise ValueError(f"NCIC code must be four digits, got {self.ncic_code!r}")
        if self.disposition not in DISPOSITIONS:
            raise ValueError(f"disposition must be one of {DISPOSITIONS}, got {self.disposition!r}")
        if not 0 <= self.sentence_days <= MAX_SENTENCE_DAYS:
            raise ValueError(f"sentence_days must be 0..{MAX_SENTENCE_DAYS}")


@dataclass(frozen=True)
class ArrestSpec:
    """One prior arrest cycle: arresting agency, date of arrest, charges."""

    ori: str
    doa: str
    charges: tuple[ChargeSpec, ...]

    def __post_init__(self) -> None:
        _check_date(self.doa, "doa")


@dataclass(frozen=True)
class ImmigrationSpec:
    """An IDENT record: status, A-number ("" when none) and (encounter_type, YYYYMMDD) pairs."""

    status: str
    a_number: str
    encounters: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if self.status not in IMMIGRATION_STATUSES:
            raise ValueError(f"unknown immigration status {self.status!r}")
        if self.a_number and not re.fullmatch(r"A[0-9]{9}", self.a_number):
            raise ValueError(f"A-number must be 'A' and nine digits, got {self.a_number!r}")


@dataclass(frozen=True)
class Person:
    """Someone in the world: descriptors, finger identity vectors and what agencies know."""

    person_id: int
    nam: str
    dob: str
    sex: str
    pob: str
    fingers: npt.NDArray[np.float64] = field(compare=False, repr=False)
    missing: frozenset[int]
    immigration: ImmigrationSpec | None
    history: tuple[ArrestSpec, ...]


@dataclass(frozen=True)
class BookingSpec:
    """One booking at an LEA; its current charges are all CHARGED with no sentence."""

    seq: int
    person_id: int
    ori: str
    booking_number: str
    doa: str
    charges: tuple[ChargeSpec, ...]
    # Days after ICE learns of the case until the LEA releases the subject (pre-trial release or
    # the end of a local sentence); the LEA's release notice gives that date.
    release_after_days: int = 1


@dataclass(frozen=True)
class World:
    """A whole synthetic world; every capture it hands out is a function of its seed."""

    seed: int
    states: tuple[StateSpec, ...]
    agencies: tuple[AgencySpec, ...]
    field_offices: tuple[FieldOfficeSpec, ...]
    lesc_staffing: LescStaffingSpec
    persons: tuple[Person, ...]
    bookings: tuple[BookingSpec, ...]
    fingerprints: SyntheticFingerprints
    # The national rollout plan in force (None: every agency's own activation flag).
    rollout: RolloutPlan | None = None

    def person(self, person_id: int) -> Person:
        """The person with this id (KeyError when unknown)."""
        if 1 <= person_id <= len(self.persons):
            candidate = self.persons[person_id - 1]
            if candidate.person_id == person_id:
                return candidate
        for person in self.persons:
            if person.person_id == person_id:
                return person
        raise KeyError(f"no person {person_id}")

    def state_of(self, ori: str) -> StateSpec:
        """The state an ORI belongs to, by its first two letters (KeyError when unknown)."""
        for state in self.states:
            if ori[:2] == state.code:
                return state
        raise KeyError(f"no state for ORI {ori!r}")

    def agency(self, ori: str) -> AgencySpec:
        """The LEA with this ORI (KeyError when unknown)."""
        for agency in self.agencies:
            if agency.ori == ori:
                return agency
        raise KeyError(f"no agency {ori!r}")

    def field_office_of(self, ori: str) -> FieldOfficeSpec:
        """The ICE field office whose area covers the state of this ORI."""
        code = self.state_of(ori).code
        for office in self.field_offices:
            if code in office.states:
                return office
        raise KeyError(f"no field office covers {code}")

    def booking_capture(self, booking: BookingSpec) -> common_pb2.Tenprint:
        """The tenprint taken at this booking: a fresh capture seeded by (seed, seq)."""
        person = self.person(booking.person_id)
        rng = np.random.default_rng([self.seed, booking.seq])
        return self.fingerprints.capture(person.fingers, rng, missing=person.missing)

    def enrollment_capture(self, person: Person) -> common_pb2.Tenprint:
        """The tenprint a gallery (IDENT, IAFIS) holds for this person, seeded by person id."""
        rng = np.random.default_rng([self.seed, _ENROLLMENT_STREAM, person.person_id])
        return self.fingerprints.capture(person.fingers, rng, missing=person.missing)

    def ident_population(self) -> tuple[Person, ...]:
        """Everyone IDENT holds a record for."""
        return tuple(p for p in self.persons if p.immigration is not None)

    def iafis_population(self) -> tuple[Person, ...]:
        """Everyone IAFIS holds a criminal history for."""
        return tuple(p for p in self.persons if p.history)


STATES: tuple[StateSpec, ...] = (
    StateSpec(
        "TX", "Texas", nff=True, relay_capable=True, moa_status="ACTIVE", sib_ori="TXSIB0000"
    ),
    StateSpec(
        "CA", "California", nff=False, relay_capable=True, moa_status="ACTIVE", sib_ori="CASIB0000"
    ),
    StateSpec(
        "AZ", "Arizona", nff=False, relay_capable=True, moa_status="SUSPENDED", sib_ori="AZSIB0000"
    ),
    StateSpec(
        "NM", "New Mexico", nff=False, relay_capable=False, moa_status="ACTIVE", sib_ori="NMSIB0000"
    ),
)

AGENCIES: tuple[AgencySpec, ...] = (
    AgencySpec("TX1010000", "Harris County Sheriff's Office", "TX", activated=True),
    AgencySpec("TX0570000", "Dallas County Sheriff's Department", "TX", activated=True),
    AgencySpec("TX2270000", "Travis County Sheriff's Office", "TX", activated=True),
    AgencySpec("CA0190000", "Los Angeles County Sheriff's Department", "CA", activated=True),
    AgencySpec("CA0370000", "San Diego County Sheriff's Department", "CA", activated=True),
    AgencySpec("CA0150000", "Kern County Sheriff's Office", "CA", activated=False),
    AgencySpec("AZ0070000", "Maricopa County Sheriff's Office", "AZ", activated=True),
    AgencySpec("AZ0100000", "Pima County Sheriff's Department", "AZ", activated=True),
    AgencySpec("AZ0140000", "Yuma County Sheriff's Office", "AZ", activated=True),
    AgencySpec("NM0010000", "Bernalillo County Sheriff's Department", "NM", activated=True),
    AgencySpec("NM0070000", "Dona Ana County Sheriff's Office", "NM", activated=True),
    AgencySpec("NM0260000", "Santa Fe County Sheriff's Office", "NM", activated=True),
)
# Relative booking volume of each agency, in AGENCIES order.
AGENCY_WEIGHTS: tuple[int, ...] = (4, 3, 2, 4, 3, 2, 4, 2, 1, 2, 2, 1)

FIELD_OFFICES: tuple[FieldOfficeSpec, ...] = (
    FieldOfficeSpec(
        "TXICE0100",
        "Dallas Field Office",
        ("TX", "NM"),
        (
            FacilitySpec("TXICE0100-PRAIRIELAND", "Prairieland Detention Center", 24),
            FacilitySpec("TXICE0100-JOHNSON", "Johnson County Law Enforcement Center", 12),
        ),
        us_attorney_office="USAO-NDTX",
    ),
    FieldOfficeSpec(
        "CAICE0100",
        "Los Angeles Field Office",
        ("CA",),
        (
            FacilitySpec("CAICE0100-ADELANTO", "Adelanto ICE Processing Center", 20),
            FacilitySpec("CAICE0100-STAGING", "Los Angeles Staging Facility", 6),
        ),
        us_attorney_office="USAO-CDCA",
    ),
    FieldOfficeSpec(
        "AZICE0100",
        "Phoenix Field Office",
        ("AZ",),
        (FacilitySpec("AZICE0100-ELOY", "Eloy Detention Center", 30),),
        us_attorney_office="USAO-AZ",
    ),
)

# The MOA asks LESC to answer around the clock; fewer analysts at night.
LESC_STAFFING = LescStaffingSpec(
    shifts="06:00=6,14:00=4,22:00=2",
    analyst_minutes=20.0,
    vtc_minutes=45.0,
    iar_target_minutes=120.0,
)


@dataclass(frozen=True)
class ChargeKind:
    """A charge the world draws: NCIC code, literal, Appendix A level (MOA), weight, sentence."""

    ncic_code: str
    literal: str
    level: int
    weight: int
    typical_sentence_days: int


CHARGE_POOL: tuple[ChargeKind, ...] = (
    ChargeKind("0901", "MURDER", 1, 1, 3650),
    ChargeKind("1102", "SEXUAL ASSAULT", 1, 1, 1825),
    ChargeKind("1201", "AGG ROBBERY", 1, 3, 1825),
    ChargeKind("1313", "AGG ASSAULT W/DEADLY WEAPON", 1, 4, 730),
    ChargeKind("5212", "UNLAWFUL CARRYING WEAPON", 1, 3, 180),
    ChargeKind("4801", "RESISTING ARREST", 1, 4, 60),
    ChargeKind("2099", "ARSON", 2, 1, 730),
    ChargeKind("2299", "BURGLARY OF HABITATION", 2, 5, 365),
    ChargeKind("2399", "THEFT", 2, 10, 60),
    ChargeKind("2404", "UNAUTH USE OF MOTOR VEHICLE", 2, 4, 180),
    ChargeKind("2605", "CREDIT CARD ABUSE", 2, 4, 180),
    ChargeKind("3562", "POSS MARIJUANA", 2, 10, 240),
    ChargeKind("5404", "DRIVING WHILE INTOXICATED", 2, 12, 30),
    ChargeKind("0301", "ILLEGAL ENTRY", 3, 2, 30),
    ChargeKind("3999", "GAMBLING", 3, 2, 10),
    ChargeKind("7399", "DISORDERLY CONDUCT", 3, 10, 10),
)

_SURNAMES: tuple[str, ...] = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT",
    "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "CHEN", "PATEL", "KIM", "REYES",
    "CRUZ", "MORALES", "ORTIZ", "GUTIERREZ", "CHAVEZ",
)  # fmt: skip
_GIVEN_M: tuple[str, ...] = (
    "JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "JOSE", "JUAN", "CARLOS", "LUIS",
    "JESUS", "MIGUEL", "RICHARD", "JOSEPH", "THOMAS", "CHRISTOPHER", "DANIEL", "ANTHONY", "MARK",
    "FRANCISCO", "ALEJANDRO", "MINH", "WEI", "RAJ", "KEVIN",
)  # fmt: skip
_GIVEN_F: tuple[str, ...] = (
    "MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "JENNIFER", "MARIA", "SUSAN", "GUADALUPE",
    "ROSA", "ANA", "LAURA", "KAREN", "NANCY", "LISA", "VERONICA", "CARMEN", "LINH", "MEI", "PRIYA",
)  # fmt: skip
_US_POB: tuple[str, ...] = ("TX", "CA", "AZ", "NM", "NY", "IL", "FL", "OK", "NV", "CO")
_FOREIGN_POB: tuple[str, ...] = (
    "MX", "MX", "MX", "MX", "GT", "SV", "HN", "CU", "CO", "CN", "IN", "PH", "VN", "KR", "NG",
)  # fmt: skip
# Statuses of IDENT records other than naturalized citizens, with their weights.
_STATUS_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("LAWFUL_PERMANENT_RESIDENT", 28),
    ("NONIMMIGRANT_VISA", 10),
    ("VISA_OVERSTAY", 10),
    ("ENTRY_WITHOUT_INSPECTION", 18),
    ("FINAL_ORDER_OF_REMOVAL", 8),
    ("PROCEEDINGS_PENDING", 10),
    ("REFUGEE_OR_ASYLEE", 6),
    ("PREVIOUSLY_REMOVED", 10),
)
_PRIOR_DISPOSITIONS: tuple[tuple[str, int], ...] = (
    ("CONVICTED", 60),
    ("DISMISSED", 25),
    ("ACQUITTED", 5),
    ("CHARGED", 10),
)


def _ymd(ordinal: int) -> str:
    return date.fromordinal(ordinal).strftime("%Y%m%d")


class _Generator:
    """Draws people, charges and agencies from one seed's random streams."""

    def __init__(self, seed: int, fingerprints: SyntheticFingerprints) -> None:
        self.seed = seed
        self.rnd = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.fingerprints = fingerprints
        self.agency_cum = tuple(accumulate(AGENCY_WEIGHTS))
        self.charge_cum = tuple(accumulate(kind.weight for kind in CHARGE_POOL))
        self.status_names = tuple(name for name, _ in _STATUS_WEIGHTS)
        self.status_cum = tuple(accumulate(weight for _, weight in _STATUS_WEIGHTS))
        self.disposition_names = tuple(name for name, _ in _PRIOR_DISPOSITIONS)
        self.disposition_cum = tuple(accumulate(weight for _, weight in _PRIOR_DISPOSITIONS))
        self.a_numbers: set[str] = set()

    def agency(self) -> AgencySpec:
        """Any agency, weighted by booking volume."""
        return self.rnd.choices(AGENCIES, cum_weights=self.agency_cum)[0]

    def rebooking_agency(self, previous: str) -> AgencySpec:
        """Mostly the agency that booked the person last, else one of the same state, or any."""
        draw = self.rnd.random()
        if draw < 0.65:
            return next(a for a in AGENCIES if a.ori == previous)
        if draw < 0.90:
            same_state = [a for a in AGENCIES if a.state == previous[:2]]
            weights = [AGENCY_WEIGHTS[AGENCIES.index(a)] for a in same_state]
            return self.rnd.choices(same_state, weights=weights)[0]
        return self.agency()

    def charge_kinds(self) -> list[ChargeKind]:
        """One to three distinct charge kinds, weighted toward the less serious."""
        count = self.rnd.choices((1, 2, 3), weights=(60, 30, 10))[0]
        kinds: list[ChargeKind] = []
        while len(kinds) < count:
            kind = self.rnd.choices(CHARGE_POOL, cum_weights=self.charge_cum)[0]
            if kind not in kinds:
                kinds.append(kind)
        return kinds

    def release_after_days(self, seq: int, charges: tuple[ChargeSpec, ...]) -> int:
        """When the LEA releases the subject of booking `seq` (own stream: see the docstring)."""
        rnd = random.Random(f"{self.seed}:{_RELEASE_STREAM}:{seq}")
        if rnd.random() < PRETRIAL_RELEASE_RATE:
            return rnd.randint(1, MAX_PRETRIAL_DAYS)
        codes = {c.ncic_code for c in charges}
        usual = max(k.typical_sentence_days for k in CHARGE_POOL if k.ncic_code in codes)
        served = round(usual * rnd.uniform(0.25, 1.0))
        return max(15, min(MAX_LOCAL_CUSTODY_DAYS, served))

    def current_charges(self) -> tuple[ChargeSpec, ...]:
        """The charges of a booking: not adjudicated, so CHARGED with no sentence."""
        return tuple(ChargeSpec(k.ncic_code, k.literal, "CHARGED", 0) for k in self.charge_kinds())

    def prior_charge(self, kind: ChargeKind) -> ChargeSpec:
        """A disposed (or never disposed) charge of a prior arrest."""
        disposition = self.rnd.choices(self.disposition_names, cum_weights=self.disposition_cum)[0]
        sentence = 0
        if disposition == "CONVICTED" and self.rnd.random() >= 0.2:
            scaled = kind.typical_sentence_days * self.rnd.lognormvariate(0.0, 0.7)
            sentence = min(MAX_SENTENCE_DAYS, max(1, int(scaled)))
        return ChargeSpec(kind.ncic_code, kind.literal, disposition, sentence)

    def history(self, dob: int) -> tuple[ArrestSpec, ...]:
        """One to four prior arrests, from age 17 to the end of 2008, oldest first."""
        count = self.rnd.choices((1, 2, 3, 4), weights=(50, 25, 15, 10))[0]
        start = min(dob + int(17 * _DAYS_PER_YEAR), _HISTORY_END)
        days = sorted(self.rnd.randint(start, _HISTORY_END) for _ in range(count))
        return tuple(
            ArrestSpec(
                ori=self.agency().ori,
                doa=_ymd(day),
                charges=tuple(self.prior_charge(kind) for kind in self.charge_kinds()),
            )
            for day in days
        )

    def a_number(self) -> str:
        """A fresh, unique A-number."""
        while True:
            candidate = f"A{self.rnd.randrange(10_000_000, 300_000_000):09d}"
            if candidate not in self.a_numbers:
                self.a_numbers.add(candidate)
                return candidate

    def immigration(self, dob: int, *, naturalized: bool) -> ImmigrationSpec:
        """An IDENT record whose encounters fit its status."""
        rnd = self.rnd
        if naturalized:
            status = "NATURALIZED_CITIZEN"
        else:
            status = rnd.choices(self.status_names, cum_weights=self.status_cum)[0]
        entry = rnd.choice(("POE-ADMISSION", "BORDER-APPREHENSION"))
        kinds: list[str]
        if status == "NATURALIZED_CITIZEN":
            kinds = ["POE-ADMISSION", "BENEFIT-APPLICATION", "BENEFIT-APPLICATION"]
        elif status in ("LAWFUL_PERMANENT_RESIDENT", "REFUGEE_OR_ASYLEE"):
            kinds = ["POE-ADMISSION", "BENEFIT-APPLICATION"] + ["POE-ADMISSION"] * rnd.randint(0, 2)
        elif status in ("NONIMMIGRANT_VISA", "VISA_OVERSTAY"):
            kinds = ["POE-ADMISSION"] * rnd.randint(1, 3)
        elif status == "ENTRY_WITHOUT_INSPECTION":
            kinds = ["BORDER-APPREHENSION"] * rnd.randint(1, 3)
        elif status in ("FINAL_ORDER_OF_REMOVAL", "PROCEEDINGS_PENDING"):
            kinds = [entry, "REMOVAL-PROCEEDINGS"]
        else:
            kinds = ["BORDER-APPREHENSION", "REMOVAL"] * rnd.randint(1, 2)
        start = max(dob + int(5 * _DAYS_PER_YEAR), date(1980, 1, 1).toordinal())
        if status in ("NONIMMIGRANT_VISA", "VISA_OVERSTAY"):
            start = max(start, date(2004, 1, 1).toordinal())
        start = min(start, _HISTORY_END)
        days = sorted(rnd.randint(start, _HISTORY_END) for _ in kinds)
        without_a_number = status == "NONIMMIGRANT_VISA" and rnd.random() < 0.5
        return ImmigrationSpec(
            status=status,
            a_number="" if without_a_number else self.a_number(),
            encounters=tuple((kind, _ymd(day)) for kind, day in zip(kinds, days, strict=True)),
        )

    def person(
        self,
        person_id: int,
        *,
        male_rate: float,
        ident: bool,
        naturalized: bool,
        criminal: bool,
    ) -> Person:
        """A new person with the records asked for."""
        rnd = self.rnd
        sex = "M" if rnd.random() < male_rate else "F"
        given = rnd.choice(_GIVEN_M if sex == "M" else _GIVEN_F)
        nam = f"{rnd.choice(_SURNAMES)},{given}"
        dob = rnd.randint(date(1949, 1, 1).toordinal(), date(1990, 12, 31).toordinal())
        foreign_born = ident or rnd.random() < 0.15
        pob = rnd.choice(_FOREIGN_POB if foreign_born else _US_POB)
        missing: frozenset[int] = frozenset()
        if rnd.random() < MISSING_FINGER_RATE:
            missing = frozenset(rnd.sample(range(1, 11), rnd.choice((1, 1, 2))))
        return Person(
            person_id=person_id,
            nam=nam,
            dob=_ymd(dob),
            sex=sex,
            pob=pob,
            fingers=self.fingerprints.new_fingers(self.np_rng),
            missing=missing,
            immigration=self.immigration(dob, naturalized=naturalized) if ident else None,
            history=self.history(dob) if criminal else (),
        )


def criminal_alien_bookings(
    persons: Sequence[Person], bookings: Iterable[BookingSpec]
) -> Counter[str]:
    """Bookings of criminal aliens per booking agency's ORI: everyone booked is charged with a
    crime, and an alien is someone IDENT holds with a status other than naturalized citizen."""
    aliens = {
        p.person_id
        for p in persons
        if p.immigration is not None and p.immigration.status != "NATURALIZED_CITIZEN"
    }
    return Counter(b.ori for b in bookings if b.person_id in aliens)


def rollout_agencies(
    agencies: Sequence[AgencySpec],
    persons: Sequence[Person],
    bookings: Sequence[BookingSpec],
    phases: Sequence[PhaseSpec],
) -> tuple[RolloutPlan, tuple[AgencySpec, ...]]:
    """The rollout plan over these agencies, weighed by their criminal-alien bookings (by
    their booking volume, `AGENCY_WEIGHTS`, when the world books none), and the agencies as
    the plan activates them: on their phase's day, or not at all."""
    counts = criminal_alien_bookings(persons, bookings)
    weights = {a.ori: counts.get(a.ori, 0) for a in agencies}
    if not any(weights.values()):
        volume = dict(zip((a.ori for a in AGENCIES), AGENCY_WEIGHTS, strict=True))
        weights = {a.ori: volume.get(a.ori, 1) for a in agencies}
    plan = plan_rollout(weights, phases)
    planned = []
    for agency in agencies:
        activation = plan.activation(agency.ori)
        if activation is None:
            planned.append(replace(agency, activated=False, activated_on="", rollout_phase=0))
        else:
            planned.append(
                replace(
                    agency,
                    activated=True,
                    activated_on=activation.activated_on.strftime("%Y%m%d"),
                    rollout_phase=activation.phase,
                    criminal_alien_share=activation.share,
                )
            )
    return plan, tuple(planned)


def build_world(
    seed: int,
    bookings: int,
    *,
    rebook_gap: int = 32,
    rollout: Sequence[PhaseSpec] | None = None,
) -> World:
    """The world of this seed with `bookings` bookings (see the module docstring), under the
    national rollout plan of these phases (services/world/rollout.py), or without one (None:
    each agency's own activation flag)."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if bookings < 0:
        raise ValueError(f"bookings must be non-negative, got {bookings}")
    if rebook_gap < 1:
        raise ValueError(f"rebook_gap must be at least 1, got {rebook_gap}")
    fingerprints = SyntheticFingerprints()
    gen = _Generator(seed, fingerprints)
    rnd = gen.rnd
    persons: list[Person] = []
    specs: list[BookingSpec] = []
    latest: dict[int, BookingSpec] = {}
    # People whose latest booking is at least rebook_gap bookings back.
    eligible: list[int] = []
    for seq in range(1, bookings + 1):
        matured = seq - rebook_gap
        if matured >= 1:
            old = specs[matured - 1]
            if latest[old.person_id].seq == matured:
                eligible.append(old.person_id)
        if eligible and rnd.random() < REBOOK_RATE:
            slot = rnd.randrange(len(eligible))
            person_id = eligible[slot]
            eligible[slot] = eligible[-1]
            eligible.pop()
            agency = gen.rebooking_agency(latest[person_id].ori)
        else:
            ident = rnd.random() < IDENT_RATE
            person = gen.person(
                len(persons) + 1,
                male_rate=0.8,
                ident=ident,
                naturalized=ident and rnd.random() < NATURALIZED_RATE,
                criminal=rnd.random() < HISTORY_RATE,
            )
            persons.append(person)
            person_id = person.person_id
            agency = gen.agency()
        doa = _ymd(_BOOKINGS_START + (seq - 1) * _BOOKING_DAYS // bookings)
        charges = gen.current_charges()
        spec = BookingSpec(
            seq=seq,
            person_id=person_id,
            ori=agency.ori,
            booking_number=f"{agency.ori[:2]}-{seq:07d}",
            doa=doa,
            charges=charges,
            release_after_days=gen.release_after_days(seq, charges),
        )
        specs.append(spec)
        latest[person_id] = spec
    for _ in range(max(MIN_BACKGROUND, 2 * bookings)):
        persons.append(
            gen.person(
                len(persons) + 1,
                male_rate=0.5,
                ident=True,
                naturalized=rnd.random() < NATURALIZED_RATE,
                criminal=False,
            )
        )
    for _ in range(max(MIN_BACKGROUND, bookings)):
        persons.append(
            gen.person(
                len(persons) + 1, male_rate=0.75, ident=False, naturalized=False, criminal=True
            )
        )
    plan: RolloutPlan | None = None
    agencies = AGENCIES
    if rollout is not None:
        plan, agencies = rollout_agencies(AGENCIES, persons, specs, rollout)
    return World(
        seed=seed,
        states=STATES,
        agencies=agencies,
        field_offices=FIELD_OFFICES,
        lesc_staffing=LESC_STAFFING,
        persons=tuple(persons),
        bookings=tuple(specs),
        fingerprints=fingerprints,
        rollout=plan,
    )


_FINGER_STATUS_NAMES = {
    common_pb2.FINGER_STATUS_PRESENT: "present",
    common_pb2.FINGER_STATUS_AMPUTATED: "amputated",
    common_pb2.FINGER_STATUS_UNPRINTABLE: "unprintable",
}


def booking_payload(world: World, booking: BookingSpec) -> dict[str, Any]:
    """The JSON body an LEA posts to the SIB edge, `POST /v1/bookings`, for this booking."""
    person = world.person(booking.person_id)
    fingers: list[dict[str, Any]] = []
    for finger in world.booking_capture(booking).fingers:
        entry: dict[str, Any] = {
            "position": finger.position,
            "status": _FINGER_STATUS_NAMES[finger.status],
        }
        if finger.status == common_pb2.FINGER_STATUS_PRESENT:
            entry["template"] = list(finger.template)
        entry["quality"] = finger.quality
        fingers.append(entry)
    return {
        "ori": booking.ori,
        "booking_number": booking.booking_number,
        "doa": booking.doa,
        "descriptors": {
            "nam": person.nam,
            "dob": person.dob,
            "sex": person.sex,
            "pob": person.pob,
        },
        "fingers": fingers,
        "charges": [
            {"ncic_code": c.ncic_code, "literal": c.literal, "disposition": c.disposition.lower()}
            for c in booking.charges
        ],
    }
