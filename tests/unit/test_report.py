"""The Strategic Plan's measures from the services' counts: values, definitions, no division by
zero, and the timely-answer measure that needs both the SIB's and LESC's counts."""

from __future__ import annotations

from services.cli.report import MEASURES, Counts, compute, format_value, review_programs

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


def test_every_goal_from_1_1_to_3_3_has_a_measure_with_a_definition() -> None:
    goals = {m.goal for m in MEASURES}
    assert goals == {"1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "3.3"}
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


# Goal 3.3: LESC and two field offices' Criminal Alien Programs, one of which lost Level 1
# subjects to expired holds, and a third office with work but no Level 1 detainer.
REVIEWED: dict[str, dict[str, float]] = {
    **COUNTS,
    "lesc": {**COUNTS["lesc"], "level_1_iar": 40, "level_1_iar_late": 1},
    "ice_field": {
        **COUNTS["ice_field"],
        "office_AZICE0000_steps": 30,
        "office_AZICE0000_level_1_taken": 19,
        "office_AZICE0000_level_1_lapsed": 1,
        "office_TXICE0000_steps": 12,
        "office_TXICE0000_level_1_taken": 20,
        "office_CAICE0000_steps": 5,
    },
}


def test_goal_3_3_reviews_each_program_against_its_level_1_target() -> None:
    rows = {row["program"]: row for row in review_programs(REVIEWED)}
    assert sorted(rows) == [
        "Criminal Alien Program, field office AZICE0000",
        "Criminal Alien Program, field office CAICE0000",
        "Criminal Alien Program, field office TXICE0000",
        "LESC integrated record checks",
    ]
    lesc = rows["LESC integrated record checks"]
    assert (lesc["numerator"], lesc["denominator"], lesc["value_pct"], lesc["met"]) == (
        39,
        40,
        97.5,
        True,
    )
    arizona = rows["Criminal Alien Program, field office AZICE0000"]
    assert (arizona["value_pct"], arizona["met"]) == (95.0, True)  # 19 of 20: at the target
    assert rows["Criminal Alien Program, field office TXICE0000"]["met"] is True
    # No Level 1 work: reviewed, but its target does not apply.
    california = rows["Criminal Alien Program, field office CAICE0000"]
    assert (california["value_pct"], california["met"]) == (None, None)
    values = _values(REVIEWED)
    assert values["programs_in_performance_review"] == 4
    assert values["programs_achieving_priority_targets_pct"] == 100.0


def test_goal_3_3_follows_what_happened() -> None:
    # Two more lapses in Arizona and late Level 1 answers at LESC: both miss their targets.
    worse = {
        **REVIEWED,
        "lesc": {**REVIEWED["lesc"], "level_1_iar_late": 3},
        "ice_field": {**REVIEWED["ice_field"], "office_AZICE0000_level_1_lapsed": 3},
    }
    rows = {row["program"]: row for row in review_programs(worse)}
    assert rows["LESC integrated record checks"]["met"] is False  # 37 of 40: 92.5 %
    assert rows["Criminal Alien Program, field office AZICE0000"]["value_pct"] == 86.4
    assert _values(worse)["programs_achieving_priority_targets_pct"] == 33.3
    # An office with no case step in the period, and a LESC with no IAQ, are not reviewed.
    quiet = {
        "lesc": {"iaq": 0},
        "ice_field": {"office_AZICE0000_steps": 0, "office_TXICE0000_steps": 2},
    }
    assert [r["program"] for r in review_programs(quiet)] == [
        "Criminal Alien Program, field office TXICE0000"
    ]
    values = _values(quiet)
    assert values["programs_in_performance_review"] == 1
    assert values["programs_achieving_priority_targets_pct"] is None


def test_goal_3_3_without_the_field_offices_records_has_no_value() -> None:
    without = {k: v for k, v in REVIEWED.items() if k != "ice_field"}
    rows = {row["key"]: row for row in compute(without, unreadable=["ice_field"])}
    for key in ("programs_in_performance_review", "programs_achieving_priority_targets_pct"):
        assert rows[key]["value"] is None and rows[key]["unreadable"] == ["ice_field"]
