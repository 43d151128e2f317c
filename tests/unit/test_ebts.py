"""EBTS transactions (services/formats/ebts.py, services/sib/transactions.py): a booking and its
CAR file make the same submission; a CAR the SIB does not take is refused naming the record and
field; images are accepted and reported as not read; each answer is a file a third-party reader
parses, with the fields EBTS gives it."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nistitl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from services.cli.ebts import example_car
from services.cli.main import app
from services.formats import ebts
from services.formats.ansi_nist import (
    AnsiNistError,
    TaggedRecord,
    Transaction,
    Type4Record,
    decode,
    encode,
    text,
)
from services.sib.api import BookingIn, to_submission
from services.sib.transactions import booking_from_car, car_file, car_from_booking
from services.world.world import booking_payload, build_world

DAI = "CASIB0000"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ebts"


def _bookings(n: int = 12) -> list[BookingIn]:
    world = build_world(5, n, rebook_gap=32)
    return [BookingIn.model_validate(booking_payload(world, b)) for b in world.bookings]


def _file(booking: BookingIn) -> bytes:
    return car_file(booking, tcn="LEA-0001", dai=DAI, dat="20261203")


def _rewrite(data: bytes, change: Any) -> bytes:
    """The file with `change(transaction)` applied."""
    return encode(change(decode(data)))


def _type2(t: Transaction, **fields: Any) -> Transaction:
    """`t` with Type-2 fields set (a value) or removed (None), by number as `f<number>`."""
    old = t.records[0]
    assert isinstance(old, TaggedRecord)
    new = dict(old.fields)
    for key, value in fields.items():
        number = int(key[1:])
        if value is None:
            new.pop(number, None)
        else:
            new[number] = value
    return replace(t, records=(TaggedRecord(2, new), *t.records[1:]))


def test_a_booking_and_its_car_file_make_the_same_submission() -> None:
    for booking in _bookings():
        car = ebts.read_car(_file(booking))
        assert car.tcn == "LEA-0001" and car.ori == booking.ori and car.dai == DAI
        again = booking_from_car(car)
        assert to_submission(again, "20090101") == to_submission(booking, "20090101")
        assert car_from_booking(again, tcn="LEA-0001", dai=DAI, dat="20261203") == car


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=32)
)
def test_a_template_crosses_the_file_exactly(values: list[float]) -> None:
    booking = _bookings(1)[0]
    fingers = [booking.fingers[0].model_copy(update={"status": "present", "template": values})]
    one = booking.model_copy(update={"fingers": fingers})
    car = ebts.read_car(_file(one))
    assert list(car.fingers[0].template) == values


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda t: replace(t, header=TaggedRecord(1, {**t.header.fields, 4: text("CPNU")})),
            r"record 1 \(Type-1\), field 1\.004: TOT 'CPNU' is not taken here",
        ),
        (
            lambda t: replace(t, header=TaggedRecord(1, {**t.header.fields, 4: text("XYZ")})),
            r"field 1\.004: TOT 'XYZ' is not taken here: the SIB's edge takes CAR",
        ),
        (
            lambda t: _type2(t, f18=text("N" * 51)),
            r"record 2 \(Type-2\), field 2\.018: NAM is 3 to 50",
        ),
        (
            lambda t: _type2(t, f9=text("B" * 21)),
            r"field 2\.009: OCA is 1 to 20 characters, got 21",
        ),
        (lambda t: _type2(t, f20=text("MEX")), r"field 2\.020: POB is 2 characters, got 3"),
        (lambda t: _type2(t, f22=text("19801332")), r"field 2\.022: DOB must be a date YYYYMMDD"),
        (lambda t: _type2(t, f24=text("Q")), r"field 2\.024: SEX is M, F, X or U"),
        (lambda t: _type2(t, f25=text("W")), r"field 2\.025: RAC: race is not accepted"),
        (
            lambda t: _type2(t, f47=text(("", "R" * 301))),
            r"field 2\.047: AOL of subfield 1 is 1 to 300",
        ),
        (
            lambda t: _type2(t, f900=text(("12X1", "charged", "0"))),
            r"field 2\.900: subfield 1: NCIC",
        ),
        (lambda t: _type2(t, f900=None), r"field 2\.900: NOC is required"),
        (
            lambda t: _type2(t, f900=text(("1201", "charged", "0" * 5000))),
            r"field 2\.900: subfield 1: sentence days is 0 to 36525",
        ),
        (lambda t: _type2(t, f84=text(("00" + "1" * 5000, "XX"))), r"field 2\.084: finger"),
        (lambda t: _type2(t, f47=None), r"field 2\.047: ASL is required"),
        (
            lambda t: replace(t, header=TaggedRecord(1, {**t.header.fields, 8: text("CA01")})),
            r"field 1\.008: ORI must be nine characters",
        ),
        (
            lambda t: replace(t, records=t.records[:1]),
            r"a CAR carries the prints: no Type-9 record with scfed's feature block",
        ),
        (
            lambda t: replace(t, records=(*t.records, TaggedRecord(2, {2: text("7")}))),
            r"a CAR has exactly one Type-2 record, this file has 2",
        ),
    ],
)
def test_a_car_the_sib_does_not_take_is_refused_naming_record_and_field(
    change: Any, words: str
) -> None:
    with pytest.raises(ebts.EbtsError, match=words):
        ebts.read_car(_rewrite(_file(_bookings(1)[0]), change))


def test_a_template_that_is_not_hexadecimal_float32_is_refused_naming_9_182() -> None:
    def damage(t: Transaction) -> Transaction:
        nine = t.records[1]
        assert isinstance(nine, TaggedRecord)
        broken = TaggedRecord(9, {**nine.fields, ebts.TPL: text("ZZZZZZZZ")})
        return replace(t, records=(t.records[0], broken, *t.records[2:]))

    with pytest.raises(ebts.EbtsError, match=r"record 3 \(Type-9\), field 9\.182: TPL holds"):
        ebts.read_car(_rewrite(_file(_bookings(1)[0]), damage))


def test_image_records_are_accepted_and_reported_as_not_read() -> None:
    booking = _bookings(1)[0]
    image = Type4Record(40, 1, (2, 255, 255, 255, 255, 255), 0, 2, 2, 0, b"\x1c\x1d\x00")
    palm = TaggedRecord(14, {2: text("41"), 3: text("1")}, data=b"\xff\xd8\x1c")
    other = TaggedRecord(9, {2: text("42"), 4: text("U"), 176: text("SOMEVENDOR")})
    data = _rewrite(_file(booking), lambda t: replace(t, records=(*t.records, image, palm, other)))
    car = ebts.read_car(data)
    assert to_submission(booking_from_car(car), "20090101") == to_submission(booking, "20090101")
    assert [line.split(":")[0] for line in car.ignored] == [
        f"record {len(decode(data).records) - 1} (Type-4 image, FGP 2)",
        f"record {len(decode(data).records)} (Type-14 image)",
        f"record {len(decode(data).records) + 1} (Type-9)",
    ]


def test_a_file_that_does_not_decode_is_the_codecs_error_not_ebts() -> None:
    with pytest.raises(AnsiNistError) as caught:
        ebts.read_car(_file(_bookings(1)[0])[:-5])
    assert not isinstance(caught.value, ebts.EbtsError)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_a_mutated_car_only_ever_raises_the_codecs_error(data: st.DataObject) -> None:
    raw = bytearray(_file(_bookings(1)[0]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        byte = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()) and at < len(raw):
            raw[at] = byte
        else:
            raw.insert(at, byte)
    with contextlib.suppress(AnsiNistError):
        ebts.read_car(bytes(raw))


RECEIVED = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
META = ebts.ResponseMeta(
    tcn="CA0123456789ABCDEF",
    booking_number="B-1",
    lea_ori="CA0190000",
    sender_ori="WVFBI0000",
    number=1,
    received_at=RECEIVED,
)
HISTORY = {
    "fbi_number": "123456AB7",
    "cycles": [
        {
            "ori": "CA0190000",
            "doa": "20090101",
            "sid": "CA1",
            "charges": [
                {"ncic_code": "1201", "literal": "ROBBERY", "disposition": "DISPOSITION_CHARGED"}
            ],
        }
    ],
}
IAR = {
    "case_id": "LESC-1",
    "fin": "FIN0123456789AB",
    "a_number": "A123456789",
    "fbi_number": "123456AB7",
    "status": "IMMIGRATION_STATUS_VISA_OVERSTAY",
    "removable": True,
    "removal_ground": "CRIMINAL",
    "current_charge_level": "OFFENSE_LEVEL_2",
    "prior_conviction_level": "OFFENSE_LEVEL_1",
    "current_charges": [
        {
            "charge": {"ncic_code": "2399", "literal": "THEFT"},
            "level": "OFFENSE_LEVEL_2",
            "category": "THEFT",
        }
    ],
    "priority": 1,
    "offense_table": "moa",
    "determined_at": "2026-12-03T21:59:00Z",
}
IDR = {
    "match": True,
    "fin": "FIN0123456789AB",
    "a_number": "A123456789",
    "score": 0.91,
    "descriptors": {"nam": "DOE,JOHN", "dob": "19800101", "sex": "M", "pob": "MX"},
    "encounters": [
        {
            "encounter_id": "E1",
            "encounter_type": "POE-ADMISSION",
            "encountered_at": "2008-05-01T10:00:00Z",
            "status": "IMMIGRATION_STATUS_NONIMMIGRANT_VISA",
        }
    ],
}
DETAINER = {
    "detainer_id": "I247-1",
    "field_office": "CAICE0100",
    "lea_ori": "CA0190000",
    "booking_tcn": "CA0123456789ABCDEF",
    "booking_number": "B-1",
    "fin": "FIN0123456789AB",
    "a_number": "A123456789",
    "fbi_number": "123456AB7",
    "nam": "DOE,JOHN",
    "level": "OFFENSE_LEVEL_1",
    "basis": "DETAINER_BASIS_PRIOR_LEVEL_1",
    "issued_at": "2026-12-03T22:00:00Z",
    "notify_before_release": True,
    "max_hold_hours": 48,
}


def _first(field: Any) -> str:
    """The first item of a field as nistitl reads it (a value, subfields, or items)."""
    if not len(field):
        return str(field.value)
    subfield = field[0]
    return str(subfield.values[0] if subfield.values else subfield.value)


@pytest.mark.parametrize(
    ("kind", "body", "tot", "expected"),
    [
        (
            "SRE",
            {"identification": "I", "fbi_number": "123456AB7", "sid": "CA1", "history": HISTORY},
            "SRE",
            {59: "I", 14: "123456AB7", 15: "CA1"},
        ),
        (
            "ERRT",
            {"errt": {"refused_tcn": "CA01", "code": "UNKNOWN_FBI_NUMBER", "reason": "R" * 400}},
            "ERRT",
            {60: "UNKNOWN_FBI_NUMBER: " + "R" * 280},
        ),
        ("NO-MATCH-IDR", {"no_match": {"idr": {"match": False}}}, "IDR", {910: "N"}),
        (
            "IDR/IAR",
            {"joint": {"idr": IDR, "iar": IAR}},
            "IAR",
            {910: "Y", 913: "FIN0123456789AB", 17: "AR-123456789", 921: "VISA_OVERSTAY", 922: "Y"},
        ),
        (
            "I-247",
            {"detainer": DETAINER},
            "I247",
            {
                940: "I247-1",
                941: "CAICE0100",
                942: "1",
                943: "PRIOR_LEVEL_1",
                946: "48",
                18: "DOE,JOHN",
            },
        ),
    ],
)
def test_each_answer_is_a_file_a_third_party_reader_parses(
    kind: str, body: dict[str, Any], tot: str, expected: dict[int, str]
) -> None:
    written = ebts.response_file(kind, body, META)
    message = nistitl.Message()
    message.parse(written)
    assert tot == message.TOT
    assert message[0][10].value == META.tcn and message[0][7].value == "CA0190000"
    record = message[(2, "0")]
    assert record[9].value == "B-1"
    for number, value in expected.items():
        assert _first(record[number]) == value, number
    ours = decode(written).records[0]
    assert isinstance(ours, TaggedRecord)
    if kind == "ERRT":
        assert "".join(s[0] for s in ours.fields[60]) == "UNKNOWN_FBI_NUMBER: " + "R" * 400
    if kind == "SRE":
        assert "CYCLE 1 DOA 20090101 ORI CA0190000 SID CA1: 1201 ROBBERY (CHARGED)" in ours.first(
            75
        )
    if kind == "IDR/IAR":
        assert ours.fields[929] == (("2399", "THEFT", "2", "THEFT"),)
        assert ours.fields[912] == (
            ("E1", "POE-ADMISSION", "20080501100000Z", "NONIMMIGRANT_VISA"),
        )


def test_the_committed_example_is_what_scfed_ebts_example_writes() -> None:
    data, booking = example_car(1, 0)
    assert (EXAMPLES / "car.eft").read_bytes() == data
    car = ebts.read_car(data)
    assert car.booking_number == booking.booking_number and car.tcn == booking.booking_number
    text_form = ebts.describe(data)
    assert "2.018 NAM  " + booking.descriptors.nam in text_form
    assert "9.176 OOD  SCFED" in text_form and "1.004 TOT  CAR" in text_form


def test_scfed_ebts_example_and_read_and_demo_format_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "car.eft"
    written = CliRunner().invoke(app, ["ebts", "example", str(out), "--seed", "1"])
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == (EXAMPLES / "car.eft").read_bytes()
    shown = CliRunner().invoke(app, ["ebts", "read", str(out)])
    assert shown.exit_code == 0 and "1.004 TOT  CAR" in shown.output
    (tmp_path / "bad.eft").write_bytes(out.read_bytes()[:-3])
    refused = CliRunner().invoke(app, ["ebts", "read", str(tmp_path / "bad.eft")])
    assert refused.exit_code == 1 and "truncated" in refused.output
    wrong = CliRunner().invoke(app, ["demo", "--format", "xml"])
    assert wrong.exit_code == 2 and "--format is json or ebts" in wrong.output
