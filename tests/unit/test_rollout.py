"""The national rollout plan: phases toward Appendix B's 30 %, 60 % and 95 % coverage targets."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.world.rollout import PLAN_PHASES, PhaseSpec, RolloutPlan, plan_rollout
from services.world.world import (
    AGENCIES,
    AGENCY_WEIGHTS,
    World,
    build_world,
    criminal_alien_bookings,
)

SEEDS = (1, 7, 2009, 31337, 4242)


def _planned(world: World) -> RolloutPlan:
    assert world.rollout is not None, "the world was built with the Plan's rollout"
    return world.rollout


@pytest.mark.parametrize("seed", SEEDS)
def test_cumulative_coverage_reaches_each_phase_target_by_its_date(seed: int) -> None:
    plan = _planned(build_world(seed, 200, rollout=PLAN_PHASES))
    for phase in plan.phases:
        assert plan.coverage_pct_on(phase.target_by) >= phase.target_pct, (seed, phase)
    # Nothing is activated before the first phase starts.
    assert plan.coverage_pct_on(PLAN_PHASES[0].starts - timedelta(days=1)) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_coverage_is_weighted_by_the_worlds_criminal_alien_bookings(seed: int) -> None:
    world = build_world(seed, 200, rollout=PLAN_PHASES)
    plan = _planned(world)
    counts = criminal_alien_bookings(world.persons, world.bookings)
    assert sum(counts.values()) > 0
    # The share each jurisdiction is weighed by is its part of the world's criminal-alien
    # bookings, and the coverage on the last day is the part of those bookings covered.
    for activation in plan.activations:
        assert activation.share == pytest.approx(
            counts.get(activation.ori, 0) / sum(counts.values())
        )
    covered = sum(counts.get(a.ori, 0) for a in plan.activations)
    assert plan.coverage_pct_on(date(2030, 1, 1)) == pytest.approx(
        100 * covered / sum(counts.values())
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_each_phase_activates_its_jurisdictions_within_its_fiscal_year(seed: int) -> None:
    plan = _planned(build_world(seed, 200, rollout=PLAN_PHASES))
    for activation in plan.activations:
        phase = plan.phases[activation.phase - 1]
        assert phase.starts <= activation.activated_on <= phase.target_by
    # Risk-based: the larger a jurisdiction's share, the earlier it is activated.
    shares = [a.share for a in plan.activations]
    assert shares == sorted(shares, reverse=True)


def test_the_plan_is_the_same_for_the_same_seed_and_follows_the_world() -> None:
    assert build_world(7, 200, rollout=PLAN_PHASES) == build_world(7, 200, rollout=PLAN_PHASES)
    plans = {_planned(build_world(seed, 200, rollout=PLAN_PHASES)).activations for seed in SEEDS}
    assert len(plans) > 1, "different worlds weigh their jurisdictions differently"


def test_agencies_carry_their_phase_date_and_share_and_the_rest_are_not_activated() -> None:
    world = build_world(2009, 200, rollout=PLAN_PHASES)
    plan = _planned(world)
    for agency in world.agencies:
        activation = plan.activation(agency.ori)
        if activation is None:
            assert not agency.activated and agency.rollout_phase == 0
        else:
            assert agency.activated
            assert agency.activated_on == activation.activated_on.strftime("%Y%m%d")
            assert agency.rollout_phase == activation.phase
            assert agency.criminal_alien_share == activation.share


def test_without_a_rollout_the_fixed_activation_flags_stand() -> None:
    world = build_world(2009, 50)
    assert world.rollout is None
    assert world.agencies == AGENCIES
    assert {a.ori for a in world.agencies if not a.activated} == {"CA0150000"}
    assert all(a.activated_on == "" for a in world.agencies)


def test_a_world_without_criminal_aliens_is_weighed_by_booking_volume() -> None:
    plan = _planned(build_world(4, 0, rollout=PLAN_PHASES))
    total = sum(AGENCY_WEIGHTS)
    weight = dict(zip((a.ori for a in AGENCIES), AGENCY_WEIGHTS, strict=True))
    for activation in plan.activations:
        assert activation.share == pytest.approx(weight[activation.ori] / total)


def test_a_phase_target_already_met_leaves_that_phase_empty() -> None:
    plan = plan_rollout({"TX1010000": 70, "CA0190000": 25, "NM0010000": 5})
    assert [(a.ori, a.phase) for a in plan.activations] == [
        ("TX1010000", 1),
        ("CA0190000", 3),
    ]
    assert plan.jurisdictions(2) == ()
    assert plan.unscheduled == ("NM0010000",)
    assert plan.cumulative_pct(2) == 70.0 and plan.cumulative_pct(3) == 95.0


def test_a_phase_spreads_its_activations_over_its_year_largest_first() -> None:
    phase = replace(PLAN_PHASES[2], phase=1)
    plan = plan_rollout({"TX1010000": 10, "CA0190000": 10, "NM0010000": 10}, (phase,))
    days = [a.activated_on for a in plan.activations]
    assert days[0] == phase.starts and days == sorted(days) and days[-1] <= phase.target_by
    assert len(set(days)) == 3


@pytest.mark.parametrize(
    ("weights", "phases", "message"),
    [
        ({}, PLAN_PHASES, "no jurisdiction"),
        ({"TX1010000": 0}, PLAN_PHASES, "no criminal alien"),
        ({"TX1010000": -1}, PLAN_PHASES, "negative"),
        ({"TX1010000": 1}, (), "at least one phase"),
        (
            {"TX1010000": 1},
            (PhaseSpec(1, date(2010, 1, 1), date(2009, 1, 1), 30),),
            "ends before it starts",
        ),
        (
            {"TX1010000": 1},
            (PLAN_PHASES[1], PLAN_PHASES[0]),
            "numbered 1, 2, 3",
        ),
        (
            {"TX1010000": 1},
            (
                PhaseSpec(1, date(2009, 1, 1), date(2009, 6, 1), 60),
                PhaseSpec(2, date(2009, 7, 1), date(2010, 1, 1), 30),
            ),
            "targets must rise",
        ),
        (
            {"TX1010000": 1},
            (
                PhaseSpec(1, date(2009, 1, 1), date(2009, 6, 1), 30),
                PhaseSpec(2, date(2009, 5, 1), date(2010, 1, 1), 60),
            ),
            "starts before phase 1 ends",
        ),
        ({"TX1010000": 1}, (PhaseSpec(1, date(2009, 1, 1), date(2009, 6, 1), 130),), "0 < target"),
    ],
)
def test_a_bad_plan_is_refused_with_the_reason(
    weights: dict[str, int], phases: tuple[PhaseSpec, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_rollout(weights, phases)


def test_the_plans_phases_follow_appendix_b_by_fiscal_year() -> None:
    assert [(p.phase, p.target_pct) for p in PLAN_PHASES] == [(1, 30), (2, 60), (3, 95)]
    # FY2009, FY2010 and FY2011: October 1 to September 30.
    assert [(p.starts, p.target_by) for p in PLAN_PHASES] == [
        (date(2008, 10, 1), date(2009, 9, 30)),
        (date(2009, 10, 1), date(2010, 9, 30)),
        (date(2010, 10, 1), date(2011, 9, 30)),
    ]
