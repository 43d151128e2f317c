"""ANSI/NIST-ITL 1-2011 traditional encoding: a transaction file read and written whole.

A file is a sequence of logical records. The first is the Type-1 transaction record; its field
1.003 CNT lists the records that follow (record type and IDC each), which is the only way to
know the type of a binary record. Two kinds of record are read:

- Tagged records (Type-1, Type-2, Type-9 to Type-99): fields `T.FFF:value`, separated by GS
  (0x1D); a value's subfields are separated by RS (0x1E) and a subfield's items by US (0x1F);
  FS (0x1C) ends the record. Field T.001 LEN comes first and is the record's length in bytes,
  FS included; fields come in ascending order, each once. An image record's field T.999 holds
  binary data (it may contain any byte) up to the record's closing FS, so it is always last.
- Binary Type-4 records (high-resolution grayscale fingerprint images): a fixed 18-byte header,
  big-endian: LEN (4 bytes, the record's length), IDC (1), IMP (1), FGP (6 bytes: positions,
  255 for an unused byte), ISR (1), HLL (2), VLL (2), GCA (1), then the image.

Decoding checks every length against the bytes that are there before reading, never reads past
the end, and does work proportional to the size of the file: any input either decodes or raises
`AnsiNistError`, which names the record (its place in the file and its type), the field where
there is one ("2.018") and the reason. Encoding computes LEN and CNT itself and refuses what
decoding would refuse, so whatever `encode` writes, `decode` reads back equal.

Text is UTF-8 (ASCII is the usual case); a separator character is never part of a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

FS: Final = 0x1C
GS: Final = 0x1D
RS: Final = 0x1E
US: Final = 0x1F
SEPARATORS: Final = frozenset({FS, GS, RS, US})
# The field of an image record that holds binary data (ANSI/NIST-ITL 1-2011 Types 10-99).
DATA_FIELD: Final = 999
# The fixed header of a binary Type-4 record, in bytes.
TYPE4_HEADER: Final = 18
# Tagged record types this codec reads; binary records are Type-4 only.
TAGGED_TYPES: Final = frozenset({1, 2, *range(9, 100)})
BINARY_TYPES: Final = frozenset({4})
# The most records one file may list in 1.003 CNT, and the longest field number.
MAX_RECORDS: Final = 1000
MAX_FIELD_DIGITS: Final = 4

# A subfield's items, a field's subfields.
Subfield = tuple[str, ...]
Value = tuple[Subfield, ...]


class AnsiNistError(ValueError):
    """A file that is not valid ANSI/NIST-ITL traditional encoding (or a value that cannot be
    written in it): where (record and field, when known) and why."""

    def __init__(
        self, reason: str, *, record: int | None = None, rtype: int | None = None, fld: str = ""
    ) -> None:
        self.reason = reason
        self.record = record
        self.rtype = rtype
        self.field = fld
        super().__init__(self.where() + reason)

    def where(self) -> str:
        """ "record 2 (Type-2), field 2.018: ", as much of it as is known."""
        parts = []
        if self.record is not None:
            parts.append(f"record {self.record}" + (f" (Type-{self.rtype})" if self.rtype else ""))
        elif self.rtype is not None:
            parts.append(f"Type-{self.rtype} record")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts) + (": " if parts else "")


def _number(value: str) -> int | None:
    """A short decimal number (at most 9 digits), or None."""
    if not value or len(value) > 9 or not (value.isdigit() and value.isascii()):
        return None
    return int(value)


def field_name(rtype: int, number: int) -> str:
    """The standard's name of a field: "2.018"."""
    return f"{rtype}.{number:03d}"


def text(*subfields: str | Iterable[str]) -> Value:
    """A field value from subfields, each a single item (a string) or items (an iterable)."""
    return tuple((s,) if isinstance(s, str) else tuple(s) for s in subfields)


@dataclass(frozen=True)
class TaggedRecord:
    """A tagged record: its type, its fields by number (LEN excluded: encoding computes it),
    and the binary data of field T.999 for an image record."""

    type: int
    fields: Mapping[int, Value] = field(default_factory=dict)
    data: bytes | None = None

    @property
    def idc(self) -> int:
        """The information designation character (field T.002), 0 when absent."""
        return _number(self.first(2)) or 0

    def get(self, number: int) -> Value | None:
        """A field's value, or None."""
        return self.fields.get(number)

    def first(self, number: int) -> str:
        """A field's first item ("" when the field is absent)."""
        value = self.fields.get(number)
        return value[0][0] if value and value[0] else ""


@dataclass(frozen=True)
class Type4Record:
    """A binary Type-4 record: a grayscale fingerprint image and its header."""

    idc: int
    imp: int
    fgp: tuple[int, ...]
    isr: int
    hll: int
    vll: int
    gca: int
    image: bytes

    @property
    def type(self) -> int:
        """Always 4."""
        return 4


Record = TaggedRecord | Type4Record


@dataclass(frozen=True)
class Transaction:
    """A whole file: the Type-1 record (1.001 LEN and 1.003 CNT excluded: encoding computes
    them from the records) and the records that follow it, in order."""

    header: TaggedRecord
    records: tuple[Record, ...] = ()


# --- encoding --------------------------------------------------------------------------------


def _check_value(value: Value, rtype: int, number: int) -> bytes:
    name = field_name(rtype, number)
    if not value:
        raise AnsiNistError("a field has at least one subfield", rtype=rtype, fld=name)
    subfields = []
    for subfield in value:
        if not subfield:
            raise AnsiNistError("a subfield has at least one item", rtype=rtype, fld=name)
        items = []
        for item in subfield:
            raw = item.encode("utf-8", "strict")
            if SEPARATORS.intersection(raw):
                raise AnsiNistError(
                    "a value may not contain a separator character (0x1C-0x1F)",
                    rtype=rtype,
                    fld=name,
                )
            items.append(raw)
        subfields.append(bytes([US]).join(items))
    encoded = bytes([RS]).join(subfields)
    if not encoded:
        raise AnsiNistError("a field may not be empty", rtype=rtype, fld=name)
    return encoded


def _tagged_bytes(rtype: int, fields: Mapping[int, Value], data: bytes | None) -> bytes:
    """One tagged record with its LEN, which counts its own digits."""
    if rtype not in TAGGED_TYPES:
        raise AnsiNistError(f"Type-{rtype} is not a tagged record type")
    body = []
    for number in sorted(fields):
        highest = DATA_FIELD if rtype >= 10 else 10**MAX_FIELD_DIGITS
        if not 2 <= number < highest:
            raise AnsiNistError(
                "LEN is written by the encoder"
                if number == 1
                else f"field numbers are 2 to {highest - 1}"
                + (" (999 holds an image record's data)" if rtype >= 10 else ""),
                rtype=rtype,
                fld=field_name(rtype, number),
            )
        body.append(f"{rtype}.{number:03d}:".encode() + _check_value(fields[number], rtype, number))
    if data is not None:
        if rtype < 10:
            raise AnsiNistError("only image records (Type-10 and above) carry binary data")
        body.append(f"{rtype}.{DATA_FIELD}:".encode() + data)
    rest = b"".join(bytes([GS]) + part for part in body) + bytes([FS])
    prefix = f"{rtype}.001:".encode()
    length = len(prefix) + len(rest) + 1
    while len(prefix) + len(str(length)) + len(rest) != length:
        length = len(prefix) + len(str(length)) + len(rest)
    return prefix + str(length).encode() + rest


def _type4_bytes(record: Type4Record) -> bytes:
    if len(record.fgp) != 6 or not all(0 <= p <= 255 for p in record.fgp):
        raise AnsiNistError("FGP is six bytes, 0-255", rtype=4, fld="FGP")
    header = [("IDC", record.idc, 1), ("IMP", record.imp, 1), ("ISR", record.isr, 1)]
    header += [("HLL", record.hll, 2), ("VLL", record.vll, 2), ("GCA", record.gca, 1)]
    for name, value, size in header:
        if not 0 <= value < 256**size:
            raise AnsiNistError(f"does not fit in {size} byte(s)", rtype=4, fld=name)
    length = TYPE4_HEADER + len(record.image)
    return (
        length.to_bytes(4, "big")
        + bytes([record.idc, record.imp, *record.fgp, record.isr])
        + record.hll.to_bytes(2, "big")
        + record.vll.to_bytes(2, "big")
        + bytes([record.gca])
        + record.image
    )


def encode(transaction: Transaction) -> bytes:
    """The file for `transaction`: LEN of every record and 1.003 CNT computed."""
    header = transaction.header
    if header.type != 1:
        raise AnsiNistError("the first record is the Type-1 record")
    if 3 in header.fields:
        raise AnsiNistError("CNT is written by the encoder", rtype=1, fld="1.003")
    if len(transaction.records) > MAX_RECORDS:
        raise AnsiNistError(f"at most {MAX_RECORDS} records follow the Type-1 record")
    cnt = [("1", str(len(transaction.records)))]
    cnt += [(str(r.type), str(r.idc)) for r in transaction.records]
    parts = [_tagged_bytes(1, {**header.fields, 3: tuple(cnt)}, None)]
    for record in transaction.records:
        if isinstance(record, Type4Record):
            parts.append(_type4_bytes(record))
        else:
            if record.type == 1:
                raise AnsiNistError("a file has one Type-1 record")
            parts.append(_tagged_bytes(record.type, record.fields, record.data))
    return b"".join(parts)


# --- decoding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """Where the decoder is: for errors."""

    record: int
    rtype: int

    def error(self, reason: str, number: int | None = None) -> AnsiNistError:
        fld = field_name(self.rtype, number) if number is not None else ""
        return AnsiNistError(reason, record=self.record, rtype=self.rtype, fld=fld)


def _tag(raw: bytes, start: int, place: _Place) -> tuple[int, int, int]:
    """The record type and field number of the tag at `start`, and where its value begins."""
    colon = raw.find(b":", start, start + 2 + 1 + MAX_FIELD_DIGITS + 1)
    tag = raw[start:colon] if colon > 0 else raw[start : start + 8]
    rtype_text, dot, number_text = tag.partition(b".")
    if (
        colon < 0
        or not dot
        or not (rtype_text.isdigit() and number_text.isdigit())
        or not (1 <= len(rtype_text) <= 2 and 1 <= len(number_text) <= MAX_FIELD_DIGITS)
    ):
        shown = tag.decode("latin-1").encode("unicode_escape").decode()[:20]
        raise place.error(f"expected a field tag T.FFF: at byte {start}, found {shown!r}")
    return int(rtype_text), int(number_text), colon + 1


def _value(raw: bytes, place: _Place, number: int) -> Value:
    if not raw:
        raise place.error("the field is empty", number)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise place.error(f"not UTF-8 text (byte {exc.start} of the value)", number) from None
    return tuple(tuple(sub.split("\x1f")) for sub in decoded.split("\x1e"))


def _declared_length(buffer: bytes, offset: int, place: _Place) -> int:
    """The LEN of the tagged record at `offset`, checked against the bytes left."""
    rtype, number, start = _tag(buffer, offset, place)
    if rtype != place.rtype:
        if place.record == 1:
            raise place.error("a file begins with the Type-1 record (tag 1.001)")
        raise place.error(f"its first tag is Type-{rtype}; 1.003 CNT says Type-{place.rtype}")
    if number != 1:
        raise place.error("the first field must be LEN", number)
    end = start
    while end < len(buffer) and end - start <= 12 and buffer[end] not in SEPARATORS:
        end += 1
    digits = buffer[start:end]
    if not digits.isdigit() or not digits.isascii():
        raise place.error("LEN is not a number", 1)
    length = int(digits)
    if length < end - offset + 1:
        raise place.error(f"LEN {length} is shorter than the LEN field itself", 1)
    left = len(buffer) - offset
    if length > left:
        raise place.error(f"truncated: LEN says {length} bytes, only {left} remain in the file", 1)
    return length


def _tagged(buffer: bytes, offset: int, place: _Place) -> tuple[TaggedRecord, int]:
    """The tagged record at `offset`, and its length."""
    length = _declared_length(buffer, offset, place)
    raw = buffer[offset : offset + length]
    fields: dict[int, Value] = {}
    data: bytes | None = None
    position = 0
    previous = 0
    while True:
        rtype, number, start = _tag(raw, position, place)
        if rtype != place.rtype:
            raise place.error(f"the tag {field_name(rtype, number)} names another record type")
        if number <= previous:
            raise place.error(
                "fields must appear once each, in ascending order"
                + (" (LEN first)" if previous == 0 else ""),
                number,
            )
        if number == DATA_FIELD and place.rtype >= 10:
            if raw[-1] != FS:
                raise place.error(f"LEN {length} does not end at the record's FS", 1)
            data = raw[start:-1]
            break
        ends = [at for at in (raw.find(GS, start), raw.find(FS, start)) if at >= 0]
        stop = min(ends) if ends else len(raw)
        if stop == len(raw):
            raise place.error(f"LEN {length} does not end at the record's FS", 1)
        if number != 1:
            fields[number] = _value(raw[start:stop], place, number)
        previous = number
        if raw[stop] == FS:
            if stop != len(raw) - 1:
                raise place.error(
                    f"the record ends (FS) after {stop + 1} bytes, but LEN says {length}", 1
                )
            break
        position = stop + 1
    return TaggedRecord(place.rtype, fields, data), length


def _type4(buffer: bytes, offset: int, place: _Place, idc: int) -> tuple[Type4Record, int]:
    left = len(buffer) - offset
    if left < TYPE4_HEADER:
        raise place.error(f"truncated: a Type-4 header is {TYPE4_HEADER} bytes, {left} remain")
    length = int.from_bytes(buffer[offset : offset + 4], "big")
    if length < TYPE4_HEADER:
        raise place.error(f"LEN {length} is shorter than the {TYPE4_HEADER}-byte header")
    if length > left:
        raise place.error(f"truncated: LEN says {length} bytes, only {left} remain in the file")
    h = buffer[offset : offset + TYPE4_HEADER]
    record = Type4Record(
        idc=h[4],
        imp=h[5],
        fgp=tuple(h[6:12]),
        isr=h[12],
        hll=int.from_bytes(h[13:15], "big"),
        vll=int.from_bytes(h[15:17], "big"),
        gca=h[17],
        image=buffer[offset + TYPE4_HEADER : offset + length],
    )
    if record.idc != idc:
        raise place.error(f"IDC {record.idc}, but 1.003 CNT says {idc}")
    return record, length


def _contents(header: TaggedRecord) -> list[tuple[int, int]]:
    """The (type, IDC) of each record after the Type-1 record, from 1.003 CNT."""
    place = _Place(1, 1)
    cnt = header.get(3)
    if cnt is None:
        raise place.error("CNT is required", 3)
    numbers: list[tuple[int, int]] = []
    for i, subfield in enumerate(cnt):
        rtype, idc = (_number(s) for s in subfield) if len(subfield) == 2 else (None, None)
        if rtype is None or idc is None:
            raise place.error(f"subfield {i + 1} is not two numbers (type, IDC)", 3)
        numbers.append((rtype, idc))
    first, rest = numbers[0], numbers[1:]
    if first[0] != 1:
        raise place.error("its first subfield describes the Type-1 record (1, count)", 3)
    if first[1] != len(rest):
        raise place.error(f"says {first[1]} records follow but lists {len(rest)}", 3)
    if len(rest) > MAX_RECORDS:
        raise place.error(f"at most {MAX_RECORDS} records may follow", 3)
    for i, (rtype, _idc) in enumerate(rest, start=2):
        if rtype == 1:
            raise place.error(f"lists a second Type-1 record (record {i})", 3)
        if rtype not in TAGGED_TYPES | BINARY_TYPES:
            raise place.error(f"record {i} is Type-{rtype}, which this reader does not take", 3)
    return rest


def decode(buffer: bytes) -> Transaction:
    """The transaction in `buffer`, or AnsiNistError naming the record, field and reason."""
    if not buffer:
        raise AnsiNistError("the file is empty")
    header, offset = _tagged(buffer, 0, _Place(1, 1))
    records: list[Record] = []
    for index, (rtype, idc) in enumerate(_contents(header), start=2):
        place = _Place(index, rtype)
        if offset >= len(buffer):
            raise place.error("truncated: the file ends before this record (listed in 1.003 CNT)")
        record: Record
        if rtype in BINARY_TYPES:
            record, length = _type4(buffer, offset, place, idc)
        else:
            record, length = _tagged(buffer, offset, place)
            if _number(record.first(2)) != idc:
                shown = record.first(2)[:12] or "absent"
                raise place.error(f"IDC {shown}, but 1.003 CNT says {idc}", 2)
        records.append(record)
        offset += length
    if offset != len(buffer):
        raise AnsiNistError(
            f"{len(buffer) - offset} bytes follow the last record listed in 1.003 CNT"
        )
    fields = {n: v for n, v in header.fields.items() if n != 3}
    return Transaction(TaggedRecord(1, fields), tuple(records))
