"""The national rollout plan: jurisdictions activated in phases toward the Plan's coverage targets.

The Strategic Plan's Appendix B (Program Schedule) deploys biometric identification "to cover
30% of the criminal alien population" in 2009, 60 % in 2010 and 95 % in "2011 and beyond"; the
body calls the deployment phased and "risk-based". The Plan budgets and reports by fiscal year
(Appendix C: FY), so each phase is one federal fiscal year, October 1 to September 30:

    phase 1  FY2009  2008-10-01 .. 2009-09-30  30 %
    phase 2  FY2010  2009-10-01 .. 2010-09-30  60 %
    phase 3  FY2011  2010-10-01 .. 2011-09-30  95 %

`plan_rollout` takes each jurisdiction's weight (its part of the criminal alien population:
the world counts the bookings of criminal aliens at each LEA) and, risk-based, takes the
largest first: a phase gets the next jurisdictions until the cumulative share reaches its
target (none, when an earlier phase already did), and activates them one after another over
its year, evenly spaced from the phase's first day, so that every target is met by the end
of its fiscal year. Jurisdictions left when the last target is met are not scheduled (the
Plan stops at 95 %). Ties are broken by ORI, so a plan is a function of its weights alone.
Shares are compared as integers, never as rounded floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class PhaseSpec:
    """One deployment phase: when it activates jurisdictions, and the coverage it must reach
    (percent of the criminal alien population) by its last day."""

    phase: int
    starts: date
    target_by: date
    target_pct: float


PLAN_PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec(1, date(2008, 10, 1), date(2009, 9, 30), 30),
    PhaseSpec(2, date(2009, 10, 1), date(2010, 9, 30), 60),
    PhaseSpec(3, date(2010, 10, 1), date(2011, 9, 30), 95),
)


@dataclass(frozen=True)
class Activation:
    """A jurisdiction the plan activates: its phase, its day, and its share (0..1)."""

    ori: str
    phase: int
    activated_on: date
    share: float


def check_phases(phases: Sequence[PhaseSpec]) -> None:
    """Refuses phases that are not numbered 1..n, overlap, or whose targets do not rise."""
    if not phases:
        raise ValueError("a rollout plan needs at least one phase")
    previous: PhaseSpec | None = None
    for n, phase in enumerate(phases, start=1):
        if phase.phase != n:
            raise ValueError(
                f"phases must be numbered 1, 2, 3, ... in order, got {[p.phase for p in phases]}"
            )
        if phase.target_by < phase.starts:
            raise ValueError(
                f"phase {n} ends before it starts ({phase.target_by} < {phase.starts})"
            )
        if not 0 < phase.target_pct <= 100:
            raise ValueError(f"phase {n}: 0 < target <= 100 %, got {phase.target_pct}")
        if previous is not None:
            if phase.starts <= previous.target_by:
                raise ValueError(f"phase {n} starts before phase {n - 1} ends")
            if phase.target_pct <= previous.target_pct:
                raise ValueError(f"phase targets must rise, phase {n}: {phase.target_pct} %")
        previous = phase


@dataclass(frozen=True)
class RolloutPlan:
    """Which jurisdictions each phase activates, and on which day."""

    phases: tuple[PhaseSpec, ...]
    # In activation order (largest share first).
    activations: tuple[Activation, ...]
    # Jurisdictions no phase activates.
    unscheduled: tuple[str, ...]
    # Each jurisdiction's weight, (ORI, weight), and their total.
    weights: tuple[tuple[str, int], ...]

    @property
    def total_weight(self) -> int:
        """The whole criminal alien population, in the weights' unit."""
        return sum(w for _, w in self.weights)

    def _weight(self, ori: str) -> int:
        return dict(self.weights)[ori]

    def activation(self, ori: str) -> Activation | None:
        """The jurisdiction's activation, or None when no phase activates it."""
        return next((a for a in self.activations if a.ori == ori), None)

    def jurisdictions(self, phase: int) -> tuple[Activation, ...]:
        """The jurisdictions this phase activates."""
        return tuple(a for a in self.activations if a.phase == phase)

    def coverage_pct_on(self, day: date) -> float:
        """Percent of the criminal alien population in jurisdictions activated by `day`."""
        covered = sum(self._weight(a.ori) for a in self.activations if a.activated_on <= day)
        return 100 * covered / self.total_weight

    def cumulative_pct(self, phase: int) -> float:
        """Percent covered once phases 1..`phase` have activated all theirs."""
        covered = sum(self._weight(a.ori) for a in self.activations if a.phase <= phase)
        return 100 * covered / self.total_weight


def plan_rollout(
    weights: Mapping[str, int], phases: Sequence[PhaseSpec] = PLAN_PHASES
) -> RolloutPlan:
    """The plan for jurisdictions of these weights (see the module docstring)."""
    check_phases(phases)
    if not weights:
        raise ValueError("no jurisdiction to roll out to")
    negative = sorted(ori for ori, w in weights.items() if w < 0)
    if negative:
        raise ValueError(f"weights may not be negative: {', '.join(negative)}")
    total = sum(weights.values())
    if total == 0:
        raise ValueError("no criminal alien population to plan coverage for (all weights 0)")
    queue = sorted(weights, key=lambda ori: (-weights[ori], ori))
    covered = 0
    activations: list[Activation] = []
    for phase in phases:
        chosen: list[str] = []
        # covered / total >= target / 100, in integers where the target is whole.
        while queue and covered * 100 < phase.target_pct * total:
            ori = queue.pop(0)
            chosen.append(ori)
            covered += weights[ori]
        span = (phase.target_by - phase.starts).days
        for k, ori in enumerate(chosen):
            day = date.fromordinal(phase.starts.toordinal() + k * span // len(chosen))
            activations.append(Activation(ori, phase.phase, day, weights[ori] / total))
    return RolloutPlan(
        phases=tuple(phases),
        activations=tuple(activations),
        unscheduled=tuple(queue),
        weights=tuple(sorted(weights.items())),
    )
