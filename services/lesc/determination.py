"""LESC status determination: immigration status, removability and offense levels.

Rules are data: removability by status comes from ``data/status_rules.toml`` and offense levels
from the deployment's Appendix A table. Nothing here reads descriptors: the MOA forbids
profiling, and a determination takes only IDENT's encounters and the criminal record.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from scfed.common.v1 import common_pb2

from .offense_levels import Classification, OffenseTable

REMOVABLE_MODES = frozenset({"always", "never", "if_convicted"})
# The encounter type of a removal, as IDENT holds it (the world's and the field office's).
REMOVAL_ENCOUNTER = "REMOVAL"


@dataclass(frozen=True)
class StatusRule:
    """Whether a person with a given immigration status is removable, and on what ground."""

    status: str
    removable: str
    ground: str
    confidence: str
    max_level: int = 3

    def applies(self, prior_conviction_level: int | None) -> bool:
        """True when the person is removable, given their most serious prior conviction."""
        if self.removable == "always":
            return True
        if self.removable == "never":
            return False
        return prior_conviction_level is not None and prior_conviction_level <= self.max_level


def parse_status_rules(document: Mapping[str, object]) -> dict[str, StatusRule]:
    """Reads and checks the status rules document."""
    statuses = document.get("status")
    if not isinstance(statuses, dict):
        raise ValueError("status rules need a [status.<NAME>] table per status")
    rules: dict[str, StatusRule] = {}
    for name, body in statuses.items():
        if not isinstance(body, dict):
            raise ValueError(f"status.{name} must be a table")
        mode = body.get("removable")
        if mode not in REMOVABLE_MODES:
            raise ValueError(f"status.{name}.removable must be one of {sorted(REMOVABLE_MODES)}")
        max_level = body.get("max_level", 3)
        if isinstance(max_level, bool) or not isinstance(max_level, int) or not 1 <= max_level <= 3:
            raise ValueError(f"status.{name}.max_level must be 1, 2 or 3")
        known = {f"IMMIGRATION_STATUS_{name}"} & set(common_pb2.ImmigrationStatus.keys())
        if not known:
            raise ValueError(f"status.{name} is not an ImmigrationStatus")
        rules[name] = StatusRule(
            status=name,
            removable=str(mode),
            ground=str(body.get("ground", "")),
            confidence=str(body.get("confidence", "low")),
            max_level=max_level,
        )
    if "UNSPECIFIED" not in rules:
        raise ValueError("status rules need [status.UNSPECIFIED], for encounters without a status")
    return rules


@functools.cache
def default_status_rules() -> dict[str, StatusRule]:
    """The status rules shipped with scfed."""
    text = resources.files(__package__ or __name__).joinpath("data/status_rules.toml").read_text()
    return parse_status_rules(tomllib.loads(text))


@dataclass(frozen=True)
class ClassifiedCharge:
    """A charge with its Appendix A classification."""

    charge: common_pb2.Charge
    classification: Classification


@dataclass(frozen=True)
class Determination:
    """What LESC concludes for one IAQ."""

    status: str
    removable: bool
    ground: str
    confidence: str
    current_charges: tuple[ClassifiedCharge, ...]
    prior_convictions: tuple[ClassifiedCharge, ...]
    # The latest removal IDENT holds: booked again, the person re-entered after it.
    removal: common_pb2.Encounter | None = None

    @property
    def reentry_after_removal(self) -> bool:
        """True when IDENT holds a removal of the person, who is now booked in the country."""
        return self.removal is not None

    @property
    def current_charge_level(self) -> int | None:
        """Most serious level among current charges."""
        return min((c.classification.level for c in self.current_charges), default=None)

    @property
    def prior_conviction_level(self) -> int | None:
        """Most serious level among prior convictions."""
        return min((c.classification.level for c in self.prior_convictions), default=None)

    @property
    def priority(self) -> int:
        """1 (highest) to 3 for removable people; 0 when not removable."""
        if not self.removable:
            return 0
        levels = [x for x in (self.current_charge_level, self.prior_conviction_level) if x]
        return min(levels, default=3)


def current_status(encounters: Sequence[common_pb2.Encounter]) -> str:
    """The status of the latest encounter, as the enum suffix ("UNSPECIFIED" if none)."""
    if not encounters:
        return "UNSPECIFIED"
    latest = max(
        encounters,
        key=lambda e: (e.encountered_at.seconds, e.encountered_at.nanos, e.encounter_id),
    )
    return common_pb2.ImmigrationStatus.Name(latest.status).removeprefix("IMMIGRATION_STATUS_")


def latest_removal(encounters: Sequence[common_pb2.Encounter]) -> common_pb2.Encounter | None:
    """The latest "REMOVAL" encounter, or None when IDENT holds no removal."""
    removals = [e for e in encounters if e.encounter_type == REMOVAL_ENCOUNTER]
    return max(
        removals,
        key=lambda e: (e.encountered_at.seconds, e.encountered_at.nanos, e.encounter_id),
        default=None,
    )


def _classify(charge: common_pb2.Charge, table: OffenseTable, *, convicted: bool) -> Classification:
    sentence = charge.sentence_days if convicted else None
    return table.classify(charge.ncic_code, sentence_days=sentence)


def prior_convictions(history: Iterable[common_pb2.ArrestCycle]) -> list[common_pb2.Charge]:
    """Every convicted charge of earlier arrest cycles; charged-only or dismissed ones are not."""
    return [
        charge
        for cycle in history
        for charge in cycle.charges
        if charge.disposition == common_pb2.DISPOSITION_CONVICTED
    ]


def determine(
    *,
    encounters: Sequence[common_pb2.Encounter],
    current_charges: Sequence[common_pb2.Charge],
    history: Sequence[common_pb2.ArrestCycle],
    table: OffenseTable,
    rules: Mapping[str, StatusRule],
) -> Determination:
    """Status, removability and levels from IDENT's encounters and the criminal record."""
    status = current_status(encounters)
    rule = rules.get(status) or rules["UNSPECIFIED"]
    current = tuple(
        ClassifiedCharge(c, _classify(c, table, convicted=False)) for c in current_charges
    )
    prior = tuple(
        ClassifiedCharge(c, _classify(c, table, convicted=True)) for c in prior_convictions(history)
    )
    prior_level = min((c.classification.level for c in prior), default=None)
    return Determination(
        status=status,
        removable=rule.applies(prior_level),
        ground=rule.ground if rule.applies(prior_level) else "",
        confidence=rule.confidence,
        current_charges=current,
        prior_convictions=prior,
        removal=latest_removal(encounters),
    )
