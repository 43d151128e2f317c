"""LESC's desk: routing of IAQs and the shift model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.lesc.desk import DeskPolicy, analysts_on_duty, parse_shifts
from services.lesc.determination import Determination
from services.lesc.models import Route


def _found(status: str, confidence: str) -> Determination:
    return Determination(
        status=status,
        removable=True,
        ground="X",
        confidence=confidence,
        current_charges=(),
        prior_convictions=(),
    )


def test_strong_matches_with_clear_statuses_are_answered_automatically() -> None:
    policy = DeskPolicy()
    assert policy.route(_found("ENTRY_WITHOUT_INSPECTION", "high"), 0.9) == "automated"
    assert policy.route(_found("LAWFUL_PERMANENT_RESIDENT", "medium"), 0.9) == "analyst"
    assert policy.route(_found("ENTRY_WITHOUT_INSPECTION", "high"), 0.65) == "analyst"


def test_a_weak_biometric_record_or_no_status_needs_a_vtc_interview() -> None:
    policy = DeskPolicy()
    assert policy.route(_found("VISA_OVERSTAY", "high"), 0.58) == "vtc"
    assert policy.route(_found("UNSPECIFIED", "low"), 0.95) == "vtc"
    assert policy.handling(Route.VTC) > policy.handling(Route.ANALYST)


def test_analysts_on_duty_follow_the_shifts_across_midnight() -> None:
    shifts = parse_shifts("06:00=6,14:00=4,22:00=2")
    on = [
        analysts_on_duty(shifts, datetime(2009, 10, 1, h, 30, tzinfo=UTC))
        for h in (3, 6, 13, 14, 23)
    ]
    assert on == [2, 6, 6, 4, 2]


@pytest.mark.parametrize("spec", ["", "6", "25:00=1", "06:00=x", "06:00=1,06:00=2"])
def test_bad_shift_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_shifts(spec)
