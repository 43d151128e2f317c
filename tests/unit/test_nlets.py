"""Nlets text of LESC's messages: an IAQ and an IAR rendered as a terminal shows them, and the
text parsed back to exactly the same protobuf fields."""

from __future__ import annotations

import struct

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2
from services.formats import nlets
from services.formats.nlets import NletsError


def _time(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def _iaq() -> lesc_pb2.Iaq:
    return lesc_pb2.Iaq(
        envelope=common_pb2.Envelope(
            message_id="6f1c0e7e-0000-4000-8000-000000000001",
            tot="IAQ",
            tcn="FBI0123456789ABCDEF",
            tcr="CA0123456789ABCDEF",
            ori="CA0190000",
            dai="VTICE0900",
            pry=5,
            sent_at=_time(1254438000),
            sender="cjis_iafis",
        ),
        pur="C",
        descriptors=common_pb2.Descriptors(nam="DOE,JOHN", dob="19800101", sex="M", pob="MX"),
        cus="Y",
        off=[
            common_pb2.Charge(
                ncic_code="1201", literal="ROBBERY", disposition=common_pb2.DISPOSITION_CHARGED
            )
        ],
        arn="A012345678",
        fbi="123456AB1",
        sid="CA12345678",
        booking_number="B-2009-001",
        idr=common_pb2.Idr(
            match=True,
            fin="FIN0001",
            a_number="A012345678",
            descriptors=common_pb2.Descriptors(nam="DOE,JOHN", dob="19800101", sex="M"),
            encounters=[
                common_pb2.Encounter(
                    encounter_id="E1",
                    encounter_type="BORDER-APPREHENSION",
                    encountered_at=_time(1100000000),
                    status=common_pb2.IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION,
                )
            ],
            score=0.93,
        ),
        history=common_pb2.CriminalHistory(
            fbi_number="123456AB1",
            cycles=[
                common_pb2.ArrestCycle(
                    ori="CA0190000",
                    doa="20050607",
                    sid="CA12345678",
                    charges=[
                        common_pb2.Charge(
                            ncic_code="3562",
                            literal="POSS. MARIJUANA",
                            disposition=common_pb2.DISPOSITION_CONVICTED,
                            sentence_days=30,
                        )
                    ],
                )
            ],
        ),
    )


def _iar() -> cjis_iafis_pb2.IarMessage:
    robbery = common_pb2.Charge(
        ncic_code="1201", literal="ROBBERY", disposition=common_pb2.DISPOSITION_CHARGED
    )
    return cjis_iafis_pb2.IarMessage(
        envelope=common_pb2.Envelope(
            message_id="6f1c0e7e-0000-4000-8000-000000000002",
            tot="IAR",
            tcn="LESC0123456789ABCDEF",
            tcr="CA0123456789ABCDEF",
            ori="CA0190000",
            dai="WVFBI0000",
            pry=5,
            sent_at=_time(1254438060, 500_000_000),
            sender="lesc",
        ),
        iar=common_pb2.Iar(
            case_id="LESC0123456789AB",
            fin="FIN0001",
            a_number="A012345678",
            fbi_number="123456AB1",
            status=common_pb2.IMMIGRATION_STATUS_ENTRY_WITHOUT_INSPECTION,
            removable=True,
            removal_ground="INADMISSIBLE-EWI",
            current_charge_level=common_pb2.OFFENSE_LEVEL_1,
            prior_conviction_level=common_pb2.OFFENSE_LEVEL_NONE,
            current_charges=[
                common_pb2.ClassifiedCharge(
                    charge=robbery, level=common_pb2.OFFENSE_LEVEL_1, category="ROBBERY"
                )
            ],
            priority=1,
            offense_table="moa",
            determined_at=_time(1254438060),
        ),
    )


# --- rendering ------------------------------------------------------------------------------


def test_an_iaq_starts_with_the_nlets_header_key_ori_destination_and_control_field() -> None:
    text = nlets.render_iaq(_iaq())
    assert text.splitlines()[0] == "IAQ.CA0190000.VTICE0900.FBI0123456789ABCDEF.TXT"


def test_an_iaq_writes_one_prefixed_field_a_line_with_the_nlets_prefixes() -> None:
    lines = nlets.render_iaq(_iaq()).splitlines()
    for line in (
        "PUR/C.",
        "NAM/DOE,JOHN.",
        "DOB/19800101.",
        "SEX/M.",
        "POB/MX.",
        "CUS/Y.",
        "OFF/1201.",
        "ARN/A012345678.",
        "FBI/123456AB1.",
        "SID/CA12345678.",
    ):
        assert line in lines
    # The charge literal keeps its period: a field ends at the line's last period.
    assert "OLT/POSS. MARIJUANA." in lines
    # Empty optional fields are left out, as a terminal leaves them out.
    assert not any(line.startswith("IPB/") for line in lines)


def test_an_iar_opens_with_the_lesc_narrative_then_its_fields() -> None:
    text = nlets.render_iar(_iar())
    head, _, fields = text.partition("\n\n")
    lines = head.splitlines()
    assert lines[0] == "IAR.CA0190000.WVFBI0000.LESC0123456789ABCDEF.TXT"
    narrative = "\n".join(lines[1:])
    assert "LAW ENFORCEMENT SUPPORT CENTER" in narrative
    assert "LESC CASE LESC0123456789AB" in narrative
    assert "IMMIGRATION STATUS: ENTRY WITHOUT INSPECTION" in narrative
    assert "REMOVABLE (INADMISSIBLE-EWI), ENFORCEMENT PRIORITY 1" in narrative
    assert "1201 ROBBERY, CHARGED: LEVEL 1 (ROBBERY)" in narrative
    assert "PRIOR CONVICTIONS: NONE" in narrative
    assert "CONTACT: LAW ENFORCEMENT SUPPORT CENTER, ORI VTICE0900" in narrative
    assert "CAS/LESC0123456789AB." in fields.splitlines()
    assert "IMS/ENTRY_WITHOUT_INSPECTION." in fields.splitlines()
    assert "REM/Y." in fields.splitlines()


def test_a_not_removable_subject_reads_so_in_the_narrative() -> None:
    message = _iar()
    message.iar.removable = False
    message.iar.removal_ground = ""
    message.iar.priority = 0
    assert "NOT REMOVABLE" in nlets.render_iar(message)


def test_values_outside_printable_ascii_are_escaped_so_every_line_stays_one_field() -> None:
    message = _iaq()
    message.descriptors.nam = "NUÑEZ,JOSÉ\nX\\Y"
    line = next(x for x in nlets.render_iaq(message).splitlines() if x.startswith("NAM/"))
    assert line == "NAM/NU\\u00D1EZ,JOS\\u00C9\\u000AX\\\\Y."
    assert nlets.parse_iaq(nlets.render_iaq(message)) == message


def test_a_period_in_a_header_value_is_escaped() -> None:
    message = _iaq()
    message.envelope.tcn = "A.B"
    assert nlets.render_iaq(message).splitlines()[0].endswith(".A\\u002EB.TXT")
    assert nlets.parse_iaq(nlets.render_iaq(message)) == message


def test_an_iaq_without_its_envelope_cannot_be_written() -> None:
    message = _iaq()
    message.ClearField("envelope")
    with pytest.raises(NletsError, match="envelope"):
        nlets.render_iaq(message)


# --- round trips ----------------------------------------------------------------------------


def test_an_iaq_parses_back_to_the_same_message() -> None:
    assert nlets.parse_iaq(nlets.render_iaq(_iaq())) == _iaq()


def test_an_iar_parses_back_to_the_same_message() -> None:
    assert nlets.parse_iar(nlets.render_iar(_iar())) == _iar()


def test_a_tot_other_than_the_message_key_is_kept_in_a_field() -> None:
    message = _iaq()
    message.envelope.tot = ""
    text = nlets.render_iaq(message)
    assert "TOT/." in text.splitlines()
    assert nlets.parse_iaq(text) == message


def test_empty_but_present_sub_messages_keep_their_presence() -> None:
    message = lesc_pb2.Iaq(envelope=common_pb2.Envelope(tot="IAQ"))
    message.descriptors.SetInParent()
    message.idr.descriptors.SetInParent()
    message.history.cycles.add().charges.add()
    back = nlets.parse_iaq(nlets.render_iaq(message))
    assert back == message
    assert back.HasField("descriptors") and back.idr.HasField("descriptors")


def test_an_unknown_enum_number_is_written_as_its_number() -> None:
    message = _iar()
    message.iar.status = 42  # type: ignore[assignment]
    text = nlets.render_iar(message)
    assert "IMS/42." in text.splitlines()
    assert nlets.parse_iar(text) == message


def test_windows_line_ends_parse_too() -> None:
    text = nlets.render_iar(_iar()).replace("\n", "\r\n")
    assert nlets.parse_iar(text) == _iar()


# --- property tests -------------------------------------------------------------------------

# The characters a field's value puts most at risk: the Nlets separators (period, slash), the
# escape character, line ends and other controls, and text outside ASCII.
EDGES = [".", "/", "\\", "\n", "\r", " ", "\t", "\x00", "\x85", "\u2028", "é", "\U0001f600"]
texts = st.text(st.one_of(st.sampled_from(EDGES), st.characters(codec="utf-8")), max_size=12)
long_texts = st.text(st.one_of(st.sampled_from(EDGES), st.characters(codec="utf-8")), max_size=300)
counts = st.integers(0, 2**32 - 1)
times = st.builds(_time, st.integers(-62135596800, 253402300799), st.integers(0, 999_999_999))
enum_numbers = st.integers(-5, 12)


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


scores = st.floats(width=32, allow_nan=False).map(_float32)


def _maybe(
    message: st.SearchStrategy[common_pb2.Descriptors],
) -> st.SearchStrategy[common_pb2.Descriptors | None]:
    return st.one_of(st.none(), message)


descriptors = st.builds(common_pb2.Descriptors, nam=long_texts, dob=texts, sex=texts, pob=texts)
charges = st.builds(
    common_pb2.Charge,
    ncic_code=texts,
    literal=long_texts,
    disposition=enum_numbers,
    sentence_days=counts,
)
envelopes = st.builds(
    common_pb2.Envelope,
    message_id=texts,
    tot=st.one_of(st.just("IAQ"), st.just("IAR"), texts),
    tcn=texts,
    tcr=texts,
    ori=texts,
    dai=texts,
    pry=counts,
    sent_at=st.one_of(st.none(), times),
    sender=texts,
)
encounters = st.builds(
    common_pb2.Encounter,
    encounter_id=texts,
    encounter_type=texts,
    encountered_at=st.one_of(st.none(), times),
    status=enum_numbers,
)
idrs = st.builds(
    common_pb2.Idr,
    match=st.booleans(),
    fin=texts,
    a_number=texts,
    descriptors=_maybe(descriptors),
    encounters=st.lists(encounters, max_size=3),
    score=scores,
)
cycles = st.builds(
    common_pb2.ArrestCycle,
    ori=texts,
    doa=texts,
    sid=texts,
    charges=st.lists(charges, max_size=3),
    tcn=texts,
)
histories = st.builds(
    common_pb2.CriminalHistory, fbi_number=texts, cycles=st.lists(cycles, max_size=3)
)
iaqs = st.builds(
    lesc_pb2.Iaq,
    envelope=envelopes,
    pur=texts,
    descriptors=st.one_of(st.none(), descriptors),
    cus=texts,
    off=st.lists(charges, max_size=3),
    arn=texts,
    fbi=texts,
    sid=texts,
    booking_number=texts,
    idr=st.one_of(st.none(), idrs),
    history=st.one_of(st.none(), histories),
)
classified = st.builds(
    common_pb2.ClassifiedCharge,
    charge=st.one_of(st.none(), charges),
    level=enum_numbers,
    category=texts,
)
iar_bodies = st.builds(
    common_pb2.Iar,
    case_id=texts,
    fin=texts,
    a_number=texts,
    fbi_number=texts,
    status=enum_numbers,
    removable=st.booleans(),
    removal_ground=texts,
    current_charge_level=enum_numbers,
    prior_conviction_level=enum_numbers,
    current_charges=st.lists(classified, max_size=3),
    prior_convictions=st.lists(classified, max_size=3),
    priority=counts,
    offense_table=texts,
    determined_at=st.one_of(st.none(), times),
)
iars = st.builds(
    cjis_iafis_pb2.IarMessage, envelope=envelopes, iar=st.one_of(st.none(), iar_bodies)
)


@settings(max_examples=200, deadline=None)
@given(iaqs)
def test_every_iaq_parses_back_to_exactly_its_fields(message: lesc_pb2.Iaq) -> None:
    back = nlets.parse_iaq(nlets.render_iaq(message))
    assert back == message
    assert back.SerializeToString(deterministic=True) == message.SerializeToString(
        deterministic=True
    )


@settings(max_examples=200, deadline=None)
@given(iars)
def test_every_iar_parses_back_to_exactly_its_fields(message: cjis_iafis_pb2.IarMessage) -> None:
    back = nlets.parse_iar(nlets.render_iar(message))
    assert back == message
    assert back.SerializeToString(deterministic=True) == message.SerializeToString(
        deterministic=True
    )


@settings(max_examples=100, deadline=None)
@given(iaqs)
def test_every_rendered_line_is_printable_ascii(message: lesc_pb2.Iaq) -> None:
    text = nlets.render_iaq(message)
    assert text.endswith("\n")
    assert all(" " <= ch <= "~" for line in text.splitlines() for ch in line)
    assert text.splitlines() == text.split("\n")[:-1]


# --- parse errors ---------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda lines: [], r"line 1: .*empty"),
        (lambda lines: ["IAR" + lines[0][3:], *lines[1:]], r"line 1: expected the header IAQ\."),
        (lambda lines: [lines[0].removesuffix(".TXT"), *lines[1:]], r"line 1: expected"),
        (lambda lines: [*lines, "NAM DOE."], r"line \d+: expected a field KEY/value\."),
        (lambda lines: [*lines, "PUR/C"], r"line \d+: expected a field KEY/value\."),
        (lambda lines: [*lines, "ZZZ/1."], r"line \d+, ZZZ: not a field of an IAQ"),
        (lambda lines: [*lines, "PUR/F."], r"line \d+, PUR: given twice"),
        (
            lambda lines: [x.replace("DSP/CHARGED.", "DSP/MAYBE.") for x in lines],
            r"line \d+, DSP: expected a Disposition \(UNSPECIFIED, CHARGED, CONVICTED",
        ),
        (
            lambda lines: [x.replace("PRY/5.", "PRY/five.") for x in lines],
            r"line \d+, PRY: expected a whole number from 0 to 4294967295",
        ),
        (
            lambda lines: [x.replace("PRY/5.", "PRY/4294967296.") for x in lines],
            r"line \d+, PRY: expected a whole number",
        ),
        (
            lambda lines: [x.replace("IDR/Y.", "IDR/YES.") for x in lines],
            r"line \d+, IDR: expected Y or N",
        ),
        (
            lambda lines: [x.replace("SCR/0.93.", "SCR/high.") for x in lines],
            r"line \d+, SCR: expected a decimal number",
        ),
        (
            lambda lines: [x.replace("DTE/2009-10-01T23:00:00Z.", "DTE/yesterday.") for x in lines],
            r"line \d+, DTE: expected an RFC 3339 time",
        ),
        (
            lambda lines: [x.replace("NAM/DOE,JOHN.", "NAM/DOE\\q.") for x in lines],
            r"line \d+, NAM: a backslash that starts no escape",
        ),
        (
            lambda lines: [x.replace("NAM/DOE,JOHN.", "NAM/\\uD800.") for x in lines],
            r"line \d+, NAM: .*surrogate",
        ),
        (
            lambda lines: [*lines, "HIS/X."],
            r"line \d+, HIS: a second criminal history",
        ),
        (
            lambda lines: [lines[0], "DOA/20010101.", *lines[1:]],
            r"line 2, DOA: out of place: it belongs in an arrest cycle",
        ),
    ],
)
def test_a_malformed_iaq_is_refused_naming_the_line_and_field(edit: object, expected: str) -> None:
    assert callable(edit)
    text = "\n".join(edit(_lines(nlets.render_iaq(_iaq())))) + "\n"
    with pytest.raises(NletsError, match=expected):
        nlets.parse_iaq(text)


def test_an_iar_without_the_blank_line_after_its_narrative_is_refused() -> None:
    text = nlets.render_iar(_iar()).replace("\n\n", "\n")
    with pytest.raises(NletsError, match=r"no blank line .* narrative"):
        nlets.parse_iar(text)


def test_an_iaq_is_not_an_iar() -> None:
    with pytest.raises(NletsError, match=r"line 1: expected the header IAR\."):
        nlets.parse_iar(nlets.render_iaq(_iaq()))


def test_a_layout_that_repeats_a_prefix_of_an_enclosing_group_is_refused() -> None:
    inner = nlets.Group("an inner group", nlets.Field("AAA", ("a",)), (nlets.Field("BBB", ("b",)),))
    with pytest.raises(ValueError, match=r"\['BBB'\] also in an inner group"):
        nlets.Group("an outer group", None, (nlets.Field("BBB", ("b",)), nlets.Child("x", inner)))
