"""The common envelope: what a new one carries, and what delivery refuses to carry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scfed.common.v1 import common_pb2
from services.runtime.clock import ManualClock
from services.runtime.envelope import MessageType, check_envelope, make_envelope
from services.runtime.errors import InvalidArgument
from services.runtime.validation import check_ori

BOOKED_AT = datetime(2009, 10, 27, 14, 30, 15, tzinfo=UTC)
LEA = "CA0190000"


def _envelope(**changes: object) -> common_pb2.Envelope:
    """A valid follow-on envelope, with some fields changed."""
    envelope = make_envelope(
        clock=ManualClock(BOOKED_AT), sender="sib", tot=MessageType.SRE, tcr="SIBBOOKING1", ori=LEA
    )
    for name, value in changes.items():
        setattr(envelope, name, value)
    return envelope


def test_a_new_envelope_carries_what_it_was_given_and_the_clocks_time() -> None:
    clock = ManualClock(BOOKED_AT)
    envelope = make_envelope(
        clock=clock,
        sender="lesc",
        tot=MessageType.IAR,
        tcr="SIB0001",
        ori=LEA,
        dai="DCFBIWAZ0",
        pry=2,
    )
    assert (envelope.sender, envelope.tot, envelope.tcr) == ("lesc", "IAR", "SIB0001")
    assert (envelope.ori, envelope.dai, envelope.pry) == (LEA, "DCFBIWAZ0", 2)
    assert envelope.sent_at.ToDatetime(tzinfo=UTC) == BOOKED_AT
    clock.advance(timedelta(minutes=5))
    later = make_envelope(clock=clock, sender="lesc", tot=MessageType.IAR, tcr="SIB0001", ori=LEA)
    assert later.sent_at.ToDatetime(tzinfo=UTC) == BOOKED_AT + timedelta(minutes=5)


def test_a_new_envelope_defaults_to_routine_priority_and_no_destination() -> None:
    envelope = _envelope()
    assert envelope.pry == 5
    assert envelope.dai == ""


def test_every_new_envelope_has_a_fresh_uuid_message_id_and_tcn() -> None:
    envelopes = [_envelope() for _ in range(50)]
    ids = {e.message_id for e in envelopes}
    assert len(ids) == 50
    for message_id in ids:
        assert str(uuid.UUID(message_id)) == message_id
    assert len({e.tcn for e in envelopes}) == 50


def test_the_tcn_carries_the_senders_prefix_unless_one_is_given() -> None:
    clock = ManualClock(BOOKED_AT)
    default = make_envelope(clock=clock, sender="ice_field", tot=MessageType.I247, tcr="T", ori=LEA)
    assert default.tcn.startswith("ICE")
    suffix = default.tcn.removeprefix("ICE")
    assert len(suffix) == 16 and suffix == suffix.upper()
    int(suffix, 16)
    chosen = make_envelope(
        clock=clock, sender="lesc", tot=MessageType.IAR, tcr="T", ori=LEA, tcn_prefix="LESC"
    )
    assert chosen.tcn.startswith("LESC") and len(chosen.tcn) == 20


def test_a_follow_on_envelope_names_its_booking_by_tcr() -> None:
    assert check_envelope(_envelope(), has_envelope=True) == "SIBBOOKING1"


def test_an_opening_envelope_names_its_booking_by_its_own_tcn() -> None:
    opening = _envelope(tot="CAR", tcr="")
    assert check_envelope(opening, has_envelope=True, follow_on=False) == opening.tcn


def test_an_opening_envelope_that_also_has_a_tcr_names_the_tcr() -> None:
    assert check_envelope(_envelope(), has_envelope=True, follow_on=False) == "SIBBOOKING1"


def test_the_longest_allowed_fields_are_accepted() -> None:
    envelope = _envelope(message_id="m" * 36, tcr="T" * 40, pry=9)
    assert check_envelope(envelope, has_envelope=True) == "T" * 40


@pytest.mark.parametrize(
    ("changes", "follow_on", "words"),
    [
        ({"message_id": ""}, True, "envelope.message_id is required"),
        ({"message_id": "m" * 37}, True, "message_id must be at most 36"),
        ({"tcr": ""}, True, r"envelope.tcr \(the TCN of the booking\) is required"),
        ({"tcr": "", "tcn": ""}, False, "envelope.tcn or envelope.tcr is required"),
        ({"tcr": "T" * 41}, True, "at most 40 characters"),
        ({"tcr": "", "tcn": "T" * 41}, False, "at most 40 characters"),
        ({"pry": 10}, True, "envelope.pry must be 1..9, got 10"),
        ({"ori": ""}, True, "envelope.ori must be nine characters"),
        ({"ori": "ca0190000"}, True, "envelope.ori must be nine characters"),
    ],
)
def test_an_envelope_without_what_delivery_needs_is_refused(
    changes: dict[str, object], follow_on: bool, words: str
) -> None:
    with pytest.raises(InvalidArgument, match=words):
        check_envelope(_envelope(**changes), has_envelope=True, follow_on=follow_on)


def test_a_message_without_an_envelope_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="envelope is required"):
        check_envelope(common_pb2.Envelope(), has_envelope=False)


def test_a_refused_envelope_is_an_invalid_argument_for_the_caller() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_envelope(_envelope(pry=12), has_envelope=True)
    assert refused.value.status == "INVALID_ARGUMENT"
    assert refused.value.http_status == 422


@pytest.mark.parametrize("ori", ["CA0190000", "DCFBIWAZ0", "TXHPD0000", "AZABCDEFG"])
def test_a_state_code_then_seven_letters_or_digits_is_an_ori(ori: str) -> None:
    assert check_ori(ori) == ori


@pytest.mark.parametrize(
    "ori",
    [
        "",
        "CA019000",
        "CA01900000",
        "ca0190000",
        "C10190000",
        "1A0190000",
        "CA019000a",
        "CA 190000",
        " CA0190000",
        "CA0190000\n",
        "CA01900-0",
        "CA\uff21190000",
    ],
)
def test_anything_else_is_refused_as_an_ori(ori: str) -> None:
    with pytest.raises(InvalidArgument, match="must be nine characters"):
        check_ori(ori)


def test_an_ori_refusal_names_the_field_and_quotes_the_value() -> None:
    with pytest.raises(InvalidArgument, match=r"^car\.ori must be .*got 'XX'$"):
        check_ori("XX", field="car.ori")
