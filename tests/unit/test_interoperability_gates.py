"""Which gate stops CJIS's IDENT search: the state's MOA or the jurisdiction, each named."""

from __future__ import annotations

import pytest

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from services.cjis_iafis.domain import closed_gates, interoperability_search
from services.runtime.errors import InvalidArgument

ORI = "CA0150000"


def test_both_gates_open_lets_the_search_run() -> None:
    interop = cjis.Interoperability(moa_active=True, jurisdiction_activated=True)
    assert closed_gates(interop, ori=ORI, doa="20091015") == []


def test_a_jurisdiction_not_yet_activated_names_its_ori_and_the_day() -> None:
    interop = cjis.Interoperability(
        moa_active=True, jurisdiction_activated=False, jurisdiction_activated_on="20100301"
    )
    assert closed_gates(interop, ori=ORI, doa="20091015") == [
        "jurisdiction ORI CA0150000 not activated until 2010-03-01"
    ]


def test_a_jurisdiction_not_activated_without_a_day_says_so() -> None:
    interop = cjis.Interoperability(moa_active=True, jurisdiction_activated=False)
    assert closed_gates(interop, ori=ORI, doa="20091015") == [
        "jurisdiction ORI CA0150000 not activated"
    ]
    # A day already passed does not explain the closed gate: no "until".
    dated = cjis.Interoperability(
        moa_active=True, jurisdiction_activated=False, jurisdiction_activated_on="20090101"
    )
    assert closed_gates(dated, ori=ORI, doa="20091015") == [
        "jurisdiction ORI CA0150000 not activated"
    ]


def test_an_inactive_moa_names_the_state_and_not_the_jurisdiction() -> None:
    interop = cjis.Interoperability(moa_active=False, jurisdiction_activated=True)
    assert closed_gates(interop, ori="AZ0070000", doa="20091015") == ["MOA not active for state AZ"]


def test_a_suspended_jurisdiction_is_named_as_suspended() -> None:
    interop = cjis.Interoperability(
        moa_active=True, jurisdiction_activated=False, jurisdiction_suspended=True
    )
    assert closed_gates(interop, ori=ORI, doa="20091015") == [
        "jurisdiction ORI CA0150000 suspended (MOA VIII)"
    ]


def test_both_gates_closed_names_both() -> None:
    interop = cjis.Interoperability(jurisdiction_activated_on="20101201")
    assert closed_gates(interop, ori=ORI, doa="20091015") == [
        "MOA not active for state CA",
        "jurisdiction ORI CA0150000 not activated until 2010-12-01",
    ]


def test_the_journal_detail_says_the_search_was_skipped_and_why() -> None:
    interop = cjis.Interoperability(moa_active=False, jurisdiction_activated=True)
    search, detail = interoperability_search(interop, ori="AZ0070000", doa="20091015")
    assert not search
    assert detail == "interoperability search skipped: MOA not active for state AZ"
    opened = cjis.Interoperability(moa_active=True, jurisdiction_activated=True)
    assert interoperability_search(opened, ori=ORI, doa="20091015") == (True, "+IDENT")


@pytest.mark.parametrize("day", ["2010-03-01", "20100230", "2010031"])
def test_a_malformed_activation_day_is_refused(day: str) -> None:
    interop = cjis.Interoperability(jurisdiction_activated_on=day)
    with pytest.raises(InvalidArgument, match=r"interoperability\.jurisdiction_activated_on"):
        closed_gates(interop, ori=ORI, doa="20091015")
