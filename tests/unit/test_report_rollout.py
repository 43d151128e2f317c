"""`scfed report`'s coverage by rollout phase, from the SIB's counts per phase."""

from __future__ import annotations

from services.cli.main import print_rollout
from services.cli.report import rollout_by_phase

SIB_COUNTS: dict[str, float] = {
    "bookings": 100,
    "rollout_phase_1_jurisdictions": 2,
    "rollout_phase_1_criminal_alien_share": 0.35,
    "rollout_phase_1_first_activation": 20081001,
    "rollout_phase_1_last_activation": 20090401,
    "rollout_phase_1_bookings": 40,
    "rollout_phase_1_bookings_checked_against_ident": 30,
    "rollout_phase_2_jurisdictions": 1,
    "rollout_phase_2_criminal_alien_share": 0.25,
    "rollout_phase_2_first_activation": 20091001,
    "rollout_phase_2_last_activation": 20091001,
    "rollout_phase_2_bookings": 25,
    "rollout_phase_2_bookings_checked_against_ident": 10,
    "rollout_phase_0_jurisdictions": 1,
    "rollout_phase_0_criminal_alien_share": 0.04,
    "rollout_phase_0_first_activation": 0,
    "rollout_phase_0_last_activation": 0,
    "rollout_phase_0_bookings": 5,
    "rollout_phase_0_bookings_checked_against_ident": 0,
}


def test_each_phase_shows_its_jurisdictions_share_target_and_bookings() -> None:
    rows = rollout_by_phase({"sib": SIB_COUNTS})
    assert [r["phase"] for r in rows] == [1, 2, 3, 0]
    first, second, third, unscheduled = rows
    assert first == {
        "phase": 1,
        "fiscal_year": "FY2009",
        "target_pct": 30,
        "jurisdictions": 2,
        "share_pct": 35.0,
        "cumulative_share_pct": 35.0,
        "target_met": True,
        "first_activation": "2008-10-01",
        "last_activation": "2009-04-01",
        "bookings": 40,
        "bookings_with_ident_search": 30,
        "bookings_without_ident_search": 10,
    }
    assert second["cumulative_share_pct"] == 60.0 and second["target_met"] is True
    assert (second["bookings_with_ident_search"], second["bookings_without_ident_search"]) == (
        10,
        15,
    )
    # A phase of the Plan that no jurisdiction was put in still shows, with its target unmet.
    assert third["jurisdictions"] == 0 and third["cumulative_share_pct"] == 60.0
    assert third["target_pct"] == 95 and third["target_met"] is False
    assert third["first_activation"] is None
    assert unscheduled["target_pct"] is None and unscheduled["fiscal_year"] is None
    assert unscheduled["share_pct"] == 4.0 and unscheduled["bookings_without_ident_search"] == 5


def test_no_rollout_registered_means_no_phases() -> None:
    assert rollout_by_phase({"sib": {"bookings": 3}}) == []
    assert rollout_by_phase({}) == []


def test_the_phases_print_as_a_table_naming_each_phase() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    print_rollout(rollout_by_phase({"sib": SIB_COUNTS}), console=console)
    text = console.export_text()
    assert "Coverage by rollout phase" in text
    for words in ("FY2009", "30%", "35.0%", "60.0%", "2008-10-01", "not in the plan"):
        assert words in text, words
