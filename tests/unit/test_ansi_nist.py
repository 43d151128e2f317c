"""ANSI/NIST-ITL traditional encoding (services/formats/ansi_nist.py): what is written reads
back equal, whatever the field lengths and values; LEN is every record's length; a third-party
reader (nistitl) reads what we write and we read what it writes; any byte string either decodes
or fails with the codec's own error, which names the record and field, in bounded time."""

from __future__ import annotations

import contextlib
import time

import nistitl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.formats.ansi_nist import (
    AnsiNistError,
    TaggedRecord,
    Transaction,
    Type4Record,
    Value,
    decode,
    encode,
    text,
)

# Any text but the four separators; ASCII and beyond, ':' and empty items included.
ITEM = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x1c\x1d\x1e\x1f"),
    max_size=40,
)
VALUE: st.SearchStrategy[Value] = (
    st.lists(st.lists(ITEM, min_size=1, max_size=4).map(tuple), min_size=1, max_size=4)
    .map(tuple)
    .filter(lambda v: v != (("",),))
)
FIELD_NUMBER = st.integers(min_value=3, max_value=9999).filter(lambda n: n != 999)


@st.composite
def tagged(draw: st.DrawFn) -> TaggedRecord:
    """A Type-2, Type-9 or image record with any fields (and binary data for an image)."""
    rtype = draw(st.sampled_from([2, 9, 10, 13, 14, 15, 99]))
    # An image record's fields stop below 999, its data field.
    numbers = FIELD_NUMBER if rtype < 10 else st.integers(min_value=3, max_value=998)
    fields = draw(st.dictionaries(numbers, VALUE, max_size=6))
    idc = draw(st.integers(min_value=0, max_value=99))
    data = draw(st.binary(max_size=64)) if rtype >= 10 and draw(st.booleans()) else None
    return TaggedRecord(rtype, {2: text(str(idc)), **fields}, data)


TYPE4 = st.builds(
    Type4Record,
    idc=st.integers(0, 255),
    imp=st.integers(0, 255),
    fgp=st.lists(st.integers(0, 255), min_size=6, max_size=6).map(tuple),
    isr=st.integers(0, 255),
    hll=st.integers(0, 65535),
    vll=st.integers(0, 65535),
    gca=st.integers(0, 255),
    image=st.binary(max_size=64),
)
TRANSACTIONS = st.builds(
    Transaction,
    header=st.dictionaries(st.integers(min_value=4, max_value=999), VALUE, max_size=6).map(
        lambda f: TaggedRecord(1, {2: text("0500"), **f})
    ),
    records=st.lists(st.one_of(tagged(), TYPE4), max_size=5).map(tuple),
)


def _records(buffer: bytes) -> list[bytes]:
    """The file cut into its records by their own LEN, read independently of the codec."""
    cuts, offset = [], 0
    while offset < len(buffer):
        if buffer[offset : offset + 1].isdigit():
            length = int(buffer[offset:].split(b":", 1)[1].split(b"\x1d", 1)[0].split(b"\x1c")[0])
        else:
            length = int.from_bytes(buffer[offset : offset + 4], "big")
        cuts.append(buffer[offset : offset + length])
        offset += length
    return cuts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TRANSACTIONS)
def test_every_transaction_reads_back_equal_and_len_is_each_records_length(
    transaction: Transaction,
) -> None:
    written = encode(transaction)
    assert decode(written) == transaction
    records = _records(written)
    assert b"".join(records) == written and len(records) == 1 + len(transaction.records)
    for raw in records[:1] + [
        r for r, rec in zip(records[1:], transaction.records, strict=True) if rec.type != 4
    ]:
        assert raw.endswith(b"\x1c")


@pytest.mark.parametrize("size", [80, 85, 90, 95, 985, 990, 995, 9985, 9990, 9995])
def test_len_is_right_where_its_own_digits_change_the_length(size: int) -> None:
    # Records of about 100, 1,000 and 10,000 bytes: LEN counts its own digits.
    for extra in range(12):
        record = TaggedRecord(2, {2: text("0"), 18: text("N" * (size + extra))})
        written = encode(Transaction(TaggedRecord(1, {2: text("0500")}), (record,)))
        raw = _records(written)[1]
        assert raw.startswith(f"2.001:{len(raw)}\x1d".encode())
        assert decode(written).records == (record,)


ASCII_VALUE: st.SearchStrategy[Value] = (
    st.lists(
        st.lists(
            st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
            min_size=1,
            max_size=3,
        ).map(tuple),
        min_size=1,
        max_size=3,
    )
    .map(tuple)
    .filter(lambda v: v != (("",),))
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(FIELD_NUMBER, ASCII_VALUE, max_size=5).map(
                lambda f: TaggedRecord(2, {2: text("0"), **f})
            ),
            TYPE4,
        ),
        max_size=4,
    )
)
def test_a_third_party_reader_reads_what_we_write(
    records: list[TaggedRecord | Type4Record],
) -> None:
    message = nistitl.Message()
    message.parse(encode(Transaction(TaggedRecord(1, {2: text("0500")}), tuple(records))))
    assert [r.type for r in message] == [1] + [r.type for r in records]
    for theirs, ours in zip(list(message)[1:], records, strict=True):
        if isinstance(ours, Type4Record):
            # nistitl keeps everything after LEN and IDC: the rest of the header, the image.
            assert len(theirs.value) == 13 + len(ours.image) and theirs.value.endswith(ours.image)
            continue
        for number, value in ours.fields.items():
            expected = "\x1e".join("\x1f".join(items) for items in value)
            written = f"2.{number:03d}:{expected}".encode()
            assert written == theirs[number].NIST


def test_we_read_what_a_third_party_writer_writes() -> None:
    message = nistitl.Message()
    message.TOT = "CAR"
    message[0].DAT = "20261203"
    message[0].TCN = "LEA-0001"
    record = nistitl.AsciiRecord(2)
    record.IDC = 0
    record += nistitl.Field(2, 18, "DOE,JOHN")
    charges = nistitl.Field(2, 47, "")
    charges.add_subfields(nistitl.SubField(""), nistitl.SubField(""))
    charges[0].add_values("20090101", "ROBBERY")
    charges[1].add_values("", "THEFT")
    record += charges
    message += record
    image = nistitl.BinaryRecord(4)
    image.IDC = 1
    image.value = bytes([1, 1, 255, 255, 255, 255, 255, 0, 0, 2, 0, 2, 0]) + b"\x1c\x1d\x1e\x1f"
    message += image
    ours = decode(message.NIST)
    assert ours.header.first(4) == "CAR" and ours.header.first(9) == "LEA-0001"
    type2 = ours.records[0]
    assert isinstance(type2, TaggedRecord) and type2.first(18) == "DOE,JOHN"
    assert type2.get(47) == (("20090101", "ROBBERY"), ("", "THEFT"))
    assert ours.records[1] == Type4Record(
        1, 1, (1, 255, 255, 255, 255, 255), 0, 2, 2, 0, b"\x1c\x1d\x1e\x1f"
    )


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_a_value_holding_a_separator_is_refused_naming_the_field(separator: str) -> None:
    record = TaggedRecord(2, {2: text("0"), 18: text(f"DOE{separator}JOHN")})
    with pytest.raises(AnsiNistError, match=r"field 2\.018: a value may not contain a separator"):
        encode(Transaction(TaggedRecord(1, {}), (record,)))


def _file() -> bytes:
    return encode(
        Transaction(
            TaggedRecord(1, {2: text("0500"), 4: text("CAR")}),
            (
                TaggedRecord(2, {2: text("0"), 18: text("DOE,JOHN")}),
                Type4Record(1, 1, (1, 255, 255, 255, 255, 255), 0, 2, 2, 0, b"\x00\x01\x02\x03"),
            ),
        )
    )


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda b: b[:-3], r"record 3 \(Type-4\): truncated: LEN says 22 bytes, only 19 remain"),
        (lambda b: b[:40], r"record 1 \(Type-1\), field 1\.001: truncated"),
        (
            lambda b: b.replace(b"2.001:32", b"2.001:30"),
            r"record 2 \(Type-2\), field 2\.001: LEN 30",
        ),
        (
            lambda b: b.replace(b"2.001:32", b"2.001:33"),
            r"record 2 \(Type-2\), field 2\.001: the record ends \(FS\) after 32 bytes, "
            "but LEN says 33",
        ),
        (lambda b: b.replace(b"2.018:", b"3.018:"), r"record 2 \(Type-2\): the tag 3\.018 names"),
        (
            lambda b: b.replace(b"1\x1f2\x1e2", b"1\x1f3\x1e2"),
            r"field 1\.003: says 3 records follow",
        ),
        (lambda b: b + b"\x00", r"1 bytes follow the last record listed in 1\.003 CNT"),
        (lambda b: b.replace(b"2.002:0", b"2.002:5"), r"record 2 \(Type-2\), field 2\.002: IDC 5"),
        (lambda b: b"2" + b[1:], r"record 1 \(Type-1\): a file begins with the Type-1 record"),
        (lambda b: b"", r"the file is empty"),
        (lambda b: b.replace(b"DOE,JOHN", b"DOE,J\xffHN"), r"field 2\.018: not UTF-8"),
    ],
)
def test_a_damaged_file_is_refused_naming_record_field_and_reason(damage, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnsiNistError, match=words):
        decode(damage(_file()))


# A decode of a fuzzed file of at most a few kB takes well under a millisecond; the bound is
# wide because it is wall-clock time on a shared machine, and it still catches a hang or a
# blow-up (test_a_large_file_decodes_in_linear_time measures the speed).
FUZZ_BOUND_S = 5.0


def _decodes_or_refuses(data: bytes) -> None:
    started = time.monotonic()
    with contextlib.suppress(AnsiNistError):
        decode(data)
    assert time.monotonic() - started < FUZZ_BOUND_S


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_ever_raise_the_codecs_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    TRANSACTIONS,
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "cut", "insert"]), st.integers(0, 10**6), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutated_files_only_ever_raise_the_codecs_error(
    transaction: Transaction, mutations: list[tuple[str, int, int]]
) -> None:
    data = bytearray(encode(transaction))
    for op, where, byte in mutations:
        at = where % (len(data) + 1)
        if op == "flip" and at < len(data):
            data[at] = byte
        elif op == "cut":
            del data[at:]
        else:
            data.insert(at, byte)
    _decodes_or_refuses(bytes(data))


def test_a_large_file_decodes_in_linear_time() -> None:
    # 1,000 records of 1 kB: well under a second, however many fields and separators.
    records = tuple(
        TaggedRecord(2, {2: text(str(i % 100)), 18: text(*(["A\x1fB"[0] * 30] * 30))})
        for i in range(1000)
    )
    written = encode(Transaction(TaggedRecord(1, {}), records))
    started = time.monotonic()
    assert len(decode(written).records) == 1000
    assert time.monotonic() - started < 2.0


def _type1(fields: bytes) -> bytes:
    """A Type-1 record of `fields` (each starting with GS) with its LEN, written by hand."""
    length = 0
    while len(written := b"1.001:%d%s\x1c" % (length, fields)) != length:
        length = len(written)
    return written


def test_numbers_too_long_for_int_are_the_codecs_error_too() -> None:
    # Python's int() refuses 4,300 digits with a ValueError: the codec never gets that far.
    huge_idc = TaggedRecord(2, {2: text("0" * 5000), 18: text("DOE,JOHN")})
    with pytest.raises(AnsiNistError, match=r"record 2 \(Type-2\), field 2\.002: IDC 0{12},"):
        decode(encode(Transaction(TaggedRecord(1, {}), (huge_idc,))))
    huge_count = _type1(b"\x1d1.002:0500\x1d1.003:1\x1f" + b"1" * 5000)
    with pytest.raises(AnsiNistError, match=r"field 1\.003: subfield 1 is not two numbers"):
        decode(huge_count)
