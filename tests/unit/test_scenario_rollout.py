"""A scenario file's rollout: a dated activation per agency, or the Plan's phases over the world."""

from __future__ import annotations

from datetime import date

import pytest

from services.scenarios.model import ScenarioFileError, parse_text
from services.scenarios.runner import _world
from services.world.rollout import PLAN_PHASES

STEPS = """
[people.a]
ident = { status = "VISA_OVERSTAY" }

[[steps]]
book = "one"
person = "a"
agency = "CA0190000"
charges = ["2399"]
"""

AGENCY = """
[[agencies]]
ori = "CA0190000"
activated_on = "20100301"
rollout_phase = 2
"""


def test_an_agency_of_the_file_dates_its_activation() -> None:
    world = _world(parse_text(AGENCY + STEPS, suffix=".toml"))
    (agency,) = world.agencies
    assert (agency.activated, agency.activated_on, agency.rollout_phase) == (True, "20100301", 2)
    assert world.rollout is None


def test_a_rollout_section_plans_the_worlds_agencies_by_the_plans_phases() -> None:
    world = _world(parse_text("[rollout]\n" + STEPS, suffix=".toml"))
    assert world.rollout is not None and world.rollout.phases == PLAN_PHASES
    for phase in PLAN_PHASES:
        assert world.rollout.coverage_pct_on(phase.target_by) >= phase.target_pct
    dated = {a.ori: a.activated_on for a in world.agencies if a.activated}
    assert dated and all(day for day in dated.values())


def test_a_rollout_section_may_set_its_own_phases() -> None:
    phases = """
[[rollout.phases]]
starts = "20090101"
target_by = "20091231"
target_pct = 50

[[rollout.phases]]
starts = "20100101"
target_by = "20101231"
target_pct = 100
"""
    world = _world(parse_text(phases + STEPS, suffix=".toml"))
    assert world.rollout is not None
    assert [(p.phase, p.starts, p.target_pct) for p in world.rollout.phases] == [
        (1, date(2009, 1, 1), 50),
        (2, date(2010, 1, 1), 100),
    ]
    assert all(a.activated for a in world.agencies)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (AGENCY.replace("20100301", "20100230") + STEPS, "agencies.0.activated_on"),
        (AGENCY.replace("20100301", "2010-03-01") + STEPS, "agencies.0.activated_on"),
        (AGENCY.replace("rollout_phase = 2", "rollout_phase = -1") + STEPS, "rollout_phase"),
        ("[rollout]\n" + AGENCY + STEPS, "date each one's activation with activated_on"),
        (
            '[[rollout.phases]]\nstarts = "20100101"\ntarget_by = "20090101"\ntarget_pct = 30\n'
            + STEPS,
            "ends before it starts",
        ),
        (
            '[[rollout.phases]]\nstarts = "20090101"\ntarget_by = "20091231"\ntarget_pct = 130\n'
            + STEPS,
            "rollout.phases.0.target_pct",
        ),
    ],
    ids=[
        "activation day not a date",
        "activation day not YYYYMMDD",
        "negative phase",
        "rollout with the file's agencies",
        "phase ending before it starts",
        "target over 100",
    ],
)
def test_a_bad_rollout_is_refused_naming_the_field(text: str, where: str) -> None:
    with pytest.raises(ScenarioFileError) as caught:
        parse_text(text, suffix=".toml", source="s.toml")
    assert where in str(caught.value)
