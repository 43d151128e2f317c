"""The demo's consistency checks: a count that was not read (an external agency's) skips the
checks that need it, named, instead of failing them."""

from __future__ import annotations

from typing import Any

from services.cli.demo import consistency, unchecked

CONSISTENT: dict[str, Any] = {
    "unanswered": 0,
    "car": 8,
    "cpi": 2,
    "sre": 10,
    "errors": 0,
    "ident_searches": 8,
    "ident_matches": 3,
    "no_match_idr": 5,
    "iaq": 3,
    "iar": 3,
    "joint_idr_iar": 3,
    "relayed_to_lea": 6,
    "not_relayed": 2,
}


def test_consistent_counts_pass_every_check() -> None:
    assert consistency(CONSISTENT) == []
    assert unchecked(CONSISTENT) == []


def test_each_broken_rule_is_named() -> None:
    assert consistency({**CONSISTENT, "sre": 9}) == ["CAR + CPI != SRE + errors"]
    assert consistency({**CONSISTENT, "iar": 2}) == ["IAQ, IAR and joint IDR/IAR differ"]
    assert consistency({**CONSISTENT, "ident_matches": 4}) == [
        "IDENT searches != matches + no-match IDRs",
        "IAQ and IDENT matches differ",
    ]


def test_counts_not_read_skip_their_checks_by_name_and_keep_the_others() -> None:
    without_ident = {**CONSISTENT, "ident_searches": None, "ident_matches": None}
    assert consistency(without_ident) == []
    assert unchecked(without_ident) == [
        "IDENT searches = matches + no-match IDRs (no ident_searches, ident_matches)",
        "IAQ = IDENT matches (no ident_matches)",
        "relayed + not relayed = IDENT searches (no ident_searches)",
    ]
    # The checks that do not read IDENT still fail when broken.
    assert consistency({**without_ident, "sre": 7}) == ["CAR + CPI != SRE + errors"]
