"""The booking a remote demo suggests tracing is one that crossed IDENT when any did."""

from __future__ import annotations

from typing import Any

from services.cli.remote import sample_tcn


def _view(*kinds: str) -> dict[str, Any]:
    return {"responses": [{"kind": kind} for kind in kinds]}


def test_the_sample_is_the_first_booking_that_crossed_ident() -> None:
    views = {"T1": _view("SRE"), "T2": _view("SRE", "NO-MATCH-IDR"), "T3": _view("SRE", "I-247")}
    assert sample_tcn(["T1", "T2", "T3"], views) == "T2"
    assert sample_tcn(["T1", "T3"], views) == "T3"


def test_without_one_the_sample_is_the_first_booking_or_none() -> None:
    assert sample_tcn(["T1", "T9"], {"T1": _view("SRE")}) == "T1"
    assert sample_tcn([], {}) == ""
