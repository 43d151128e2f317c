"""The gRPC edge's string check: a control character anywhere in a message is found and named
by its path; tab, LF and CR pass in free text and not in identifiers."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from scfed.admin.v1 import admin_pb2 as admin
from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as cjis
from scfed.common.v1 import common_pb2 as common
from scfed.ice_field.v1 import ice_field_pb2 as ice
from scfed.ident.v1 import ident_pb2 as ident
from services.runtime.edge import MAX_DETAILS, bounded, check_request
from services.runtime.errors import InvalidArgument, shown


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (common.JournalQuery(tcn="T\x00"), "tcn"),
        (ice.FieldOffice(states=["OR", "W\x00"]), "states[1]"),
        (
            cjis.EnrollCriminalRecordsRequest(
                records=[
                    cjis.CriminalRecord(),
                    cjis.CriminalRecord(
                        cycles=[common.ArrestCycle(charges=[common.Charge(ncic_code="12\n0")])]
                    ),
                ]
            ),
            "records[1].cycles[0].charges[0].ncic_code",
        ),
        (admin.ResetResponse(deleted={"inbox\x00": 1}), "deleted key"),
        (ice.FieldOffice(name="Port\x7fland"), "name"),
        (ice.FieldOffice(ori="OR\tICE0100"), "ori"),
    ],
)
def test_a_control_character_is_refused_naming_its_field(message: Message, path: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_request(message)
    assert caught.value.message.startswith(f"{path} must not contain control characters")


def test_tab_and_line_breaks_pass_in_free_text() -> None:
    check_request(ice.FieldOffice(name="Portland\tOR\r\n", ori="ORICE0100"))


def test_long_values_are_quoted_by_a_prefix_and_details_are_bounded() -> None:
    assert shown("x" * 3_000_000) == "'" + "x" * 39 + "... (3000000 characters)"
    assert shown("short") == "'short'"
    assert len(bounded("y" * 50_000)) == MAX_DETAILS
    assert bounded("fine") == "fine"


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(0, -1), (0, 10**9), (-62_135_596_801, 0), (253_402_300_800, 0)]
)
def test_a_timestamp_out_of_range_is_refused_naming_its_field(seconds: int, nanos: int) -> None:
    encounter = common.Encounter()
    encounter.encountered_at.seconds = seconds
    encounter.encountered_at.nanos = nanos
    request = ident.EnrollRequest(encounter=ident.NewEncounter(encounter=encounter))
    with pytest.raises(InvalidArgument) as caught:
        check_request(request)
    assert caught.value.message.startswith(
        "encounter.encounter.encountered_at is not a valid timestamp"
    )
    encounter.encountered_at.seconds, encounter.encountered_at.nanos = 0, 999_999_999
    check_request(ident.EnrollRequest(encounter=ident.NewEncounter(encounter=encounter)))
