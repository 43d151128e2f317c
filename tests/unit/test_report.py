"""The Strategic Plan's measures from the services' counts: values, definitions, no division by
zero, and the timely-answer measure that needs both the SIB's and LESC's counts."""

from __future__ import annotations

from services.cli.report import MEASURES, Counts, compute, format_value

COUNTS: dict[str, dict[str, float]] = {
    "sib": {
        "bookings": 200,
        "bookings_checked_against_ident": 150,
        "no_match_idr": 90,
        "joint_idr_iar": 60,
    },
    "lesc": {"iaq": 60, "iar": 60, "iar_late": 6, "aliens_identified": 50},
    "ice_field": {
        "alien_arrests": 40,
        "criminal_alien_arrests": 30,
        "level_1_criminal_alien_arrests": 12,
        "atd_eligible_arrests": 8,
        "atd_placements": 6,
        "removals": 20,
        "criminal_alien_removals": 15,
        "level_1_criminal_alien_removals": 5,
        "criminal_custody_stays_ended": 4,
        "criminal_custody_days_total": 130,
        "beds": 80,
        "criminal_alien_bed_days": 200,
        "bed_days_available": 800,
    },
}


def _values(counts: Counts) -> dict[str, float | None]:
    return {row["key"]: row["value"] for row in compute(counts)}


def test_every_goal_from_1_1_to_3_2_has_a_measure_with_a_definition() -> None:
    goals = {m.goal for m in MEASURES}
    assert goals == {"1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2"}
    for row in compute(COUNTS):
        assert row["definition"] and row["measure"] and row["unit"] in ("%", "count", "days")


def test_values_follow_their_definitions() -> None:
    values = _values(COUNTS)
    assert values["biometric_coverage_pct"] == 75.0
    assert values["aliens_identified"] == 50
    assert values["level_1_aliens_identified"] == 0  # a count missing from the source is 0
    # (90 no-match IDRs + 60 IARs - 6 late) / (90 + 60)
    assert values["timely_responses_pct"] == 96.0
    assert values["criminal_alien_arrests_pct"] == 75.0
    assert values["level_1_criminal_alien_arrests_pct"] == 40.0
    assert values["criminal_alien_removals_pct"] == 75.0
    assert values["level_1_criminal_alien_removals_pct"] == 33.3
    assert values["average_custody_days"] == 32.5
    assert values["beds_occupied_by_criminal_aliens_pct"] == 25.0
    assert values["eligible_detainees_in_atd_pct"] == 75.0


def test_a_measure_with_nothing_to_measure_has_no_value_rather_than_zero() -> None:
    values = _values({"sib": {"bookings": 0}, "lesc": {}, "ice_field": {}})
    assert values["biometric_coverage_pct"] is None
    assert values["criminal_alien_removals_pct"] is None
    assert values["aliens_identified"] == 0
    row = next(r for r in compute({}) if r["key"] == "average_custody_days")
    assert format_value(row) == "- (none yet)"


def test_measures_of_an_unreadable_service_are_named_not_counted_as_zero() -> None:
    without_lesc = {k: v for k, v in COUNTS.items() if k != "lesc"}
    rows = {row["key"]: row for row in compute(without_lesc, unreadable=["lesc"])}
    for key in ("aliens_identified", "level_1_aliens_identified", "timely_responses_pct"):
        assert rows[key]["value"] is None and rows[key]["unreadable"] == ["lesc"]
        assert format_value(rows[key]) == "- (not read: lesc)"
    # The measures of the services that were read keep their values.
    assert rows["biometric_coverage_pct"]["value"] == 75.0
    assert rows["criminal_alien_arrests_pct"]["value"] == 75.0
    assert "unreadable" not in rows["biometric_coverage_pct"]
