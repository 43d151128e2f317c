"""A team's test of LESC's desk on agency time: run with ``pytest --scfed-clock manual``."""

from __future__ import annotations

import pytest
from scfed.services.testing.client import ScfedFederation


def test_lesc_answers_a_match_only_once_its_analysts_had_their_time(
    scfed: ScfedFederation,
) -> None:
    if not (scfed.agency_clock or "").startswith("manual"):
        pytest.skip("needs the agency clocks stepped by hand: pytest --scfed-clock manual")
    booking = scfed.pick(in_ident=True, removable=True, charge_level=1)
    tcn = scfed.submit(booking)
    scfed.quiet()
    assert scfed.booking(tcn)["status"] != "answered"

    scfed.advance("2h", agency="lesc")
    view = scfed.final(tcn)

    assert "IDR/IAR" in [r["kind"] for r in view["responses"]]
