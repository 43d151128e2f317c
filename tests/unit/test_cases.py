"""The I-247 hold in business hours, and the removal case's state machine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.ice_field import cases
from services.ice_field.holidays import add_business_hours, federal_holidays, is_business_day
from services.ice_field.models import CLOSED_STATES, CaseState


def test_federal_holidays_with_observed_dates() -> None:
    h2009 = federal_holidays(2009)
    assert date(2009, 11, 26) in h2009  # Thanksgiving, fourth Thursday
    assert date(2009, 5, 25) in h2009  # Memorial Day, last Monday
    assert date(2009, 1, 19) in h2009  # Martin Luther King, Jr. Day
    assert date(2009, 7, 3) in h2009  # July 4 was a Saturday: observed Friday
    assert date(2010, 12, 31) in federal_holidays(2010)  # New Year's 2011 on a Saturday
    assert date(2020, 6, 19) not in federal_holidays(2020)
    assert date(2021, 6, 18) in federal_holidays(2021)  # Juneteenth 2021, a Saturday
    assert len(h2009) == 10


def test_a_hold_released_on_a_weekday_lasts_two_business_days() -> None:
    tuesday = datetime(2009, 10, 6, 9, 0, tzinfo=UTC)
    assert add_business_hours(tuesday, 48) == datetime(2009, 10, 8, 9, 0, tzinfo=UTC)


def test_a_hold_skips_the_weekend_and_a_holiday() -> None:
    friday = datetime(2009, 11, 6, 9, 0, tzinfo=UTC)
    # Friday 15h, the weekend skipped, Monday 24h, Tuesday 9h make 48: Tuesday 09:00.
    assert add_business_hours(friday, 48) == datetime(2009, 11, 10, 9, 0, tzinfo=UTC)
    monday = datetime(2009, 11, 9, 12, 0, tzinfo=UTC)
    # Monday 12h, Tuesday 24h, Wednesday 11 November (Veterans Day) skipped, Thursday 12h.
    assert not is_business_day(date(2009, 11, 11))
    assert add_business_hours(monday, 48) == datetime(2009, 11, 12, 12, 0, tzinfo=UTC)
    thursday_before_thanksgiving = datetime(2009, 11, 25, 12, 0, tzinfo=UTC)
    # Wed 12h, Thanksgiving skipped, Friday 24h, weekend skipped, Monday 12h.
    assert add_business_hours(thursday_before_thanksgiving, 48) == datetime(
        2009, 11, 30, 12, 0, tzinfo=UTC
    )


def test_a_hold_that_starts_on_a_holiday_starts_counting_on_the_next_business_day() -> None:
    christmas = datetime(2009, 12, 25, 18, 0, tzinfo=UTC)
    assert add_business_hours(christmas, 1) == datetime(2009, 12, 28, 1, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        add_business_hours(christmas, -1)


def test_a_case_runs_from_detainer_to_removal_with_a_time_on_every_step() -> None:
    t0 = datetime(2009, 10, 1, tzinfo=UTC)
    case = cases.CaseFile("C1")
    path = [
        CaseState.RELEASE_NOTICED,
        CaseState.IN_CUSTODY,
        CaseState.IN_PROCEEDINGS,
        CaseState.FINAL_ORDER,
        CaseState.TRAVEL_DOCUMENT,
        CaseState.REMOVED,
    ]
    for i, state in enumerate(path):
        case.move(state, t0 + timedelta(days=i))
    assert case.state == CaseState.REMOVED
    assert [t.to_state for t in case.history] == path
    assert [t.at for t in case.history] == sorted(t.at for t in case.history)


def test_a_stipulated_order_skips_the_hearing() -> None:
    case = cases.CaseFile("C2")
    t0 = datetime(2009, 10, 1, tzinfo=UTC)
    case.move(CaseState.RELEASE_NOTICED, t0)
    case.move(CaseState.ATD, t0)
    case.move(CaseState.FINAL_ORDER, t0 + timedelta(days=3), "stipulated order")
    assert case.history[-1].reason == "stipulated order"


@pytest.mark.parametrize(
    ("steps", "bad"),
    [
        ([], CaseState.REMOVED),
        ([CaseState.RELEASE_NOTICED], CaseState.FINAL_ORDER),
        ([CaseState.LAPSED], CaseState.RELEASE_NOTICED),
        ([], "vacation"),
    ],
)
def test_illegal_transitions_are_refused_with_the_reason(steps: list[str], bad: str) -> None:
    case = cases.CaseFile("C3")
    t0 = datetime(2009, 10, 1, tzinfo=UTC)
    for state in steps:
        case.move(state, t0)
    with pytest.raises(cases.IllegalTransition, match="C3"):
        case.move(bad, t0)
    assert case.state == (steps[-1] if steps else CaseState.DETAINER_ISSUED)


def test_time_never_runs_backwards_in_a_case() -> None:
    case = cases.CaseFile("C4")
    t0 = datetime(2009, 10, 1, tzinfo=UTC)
    case.move(CaseState.RELEASE_NOTICED, t0)
    with pytest.raises(cases.IllegalTransition, match="earlier"):
        case.move(CaseState.IN_CUSTODY, t0 - timedelta(hours=1))


def test_every_state_is_reachable_and_terminal_states_are_final() -> None:
    reachable = {CaseState.DETAINER_ISSUED}
    frontier = [CaseState.DETAINER_ISSUED]
    while frontier:
        for nxt in cases.TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(cases.TRANSITIONS)
    assert {CaseState.REMOVED, CaseState.LAPSED, CaseState.RELIEF_GRANTED} == cases.TERMINAL


def test_the_one_open_case_index_names_exactly_the_closed_states() -> None:
    assert frozenset(CLOSED_STATES) == cases.TERMINAL
