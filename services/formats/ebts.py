"""EBTS transactions the SIB's edge takes and answers in, on ANSI/NIST-ITL traditional encoding.

The field numbers, mnemonics and lengths are those of the FBI CJIS Electronic Biometric
Transmission Specification (EBTS) where EBTS has the field; where the flow needs something EBTS
has no field for, scfed defines one in the range of Type-2 fields EBTS leaves to its users (state
bureaus define theirs there too, for example Texas DPS's 2.410-2.412): 2.900 onwards, listed in
`SCFED_FIELDS` and in the README.

A CAR (Criminal Answer Required) is read into a `Car`:

- Type-1: 1.002 VER, 1.004 TOT (CAR), 1.005 DAT, 1.007 DAI, 1.008 ORI (the booking agency),
  1.009 TCN (the sender's own control number).
- Type-2 (exactly one): 2.009 OCA (the booking number), 2.018 NAM, 2.020 POB, 2.022 DOB,
  2.024 SEX, 2.045 DOA, 2.047 ASL (one subfield per charge: DOO date of offense, AOL arrest
  offense literal), 2.084 AMP (amputated "XX" or unprintable "UP" fingers: FGP, AMPCD) and
  2.900 NOC, scfed's: the NCIC offense code of each ASL charge, in the same order, with its
  disposition and sentence days. 2.025 RAC is refused: no decision may read race (MOA VIII).
- Type-9, one per printed finger: the synthetic feature template in the block ANSI/NIST-ITL
  1-2011 leaves to vendors with no registered block of their own, "other feature sets"
  (9.176-9.225): 9.176 OOD owner "SCFED", 9.177 PAG algorithm (the synthetic model's version),
  9.178 SOD system, 9.179 DTX contact, then scfed's 9.180 FGP (finger position 1-10), 9.181 FQS
  (quality 0-100) and 9.182 TPL: the template's values as IEEE 754 float32, big-endian, each
  written as 8 hexadecimal digits (upper case), so that a template crosses exactly. A Type-9
  record whose 9.176 is not "SCFED" (another vendor's minutiae) is ignored.
- Type-4 and Type-14 fingerprint images, and any other image record (Type-10 and above), are
  accepted and reported in `Car.ignored`: the synthetic world has no images to compare.

The answers are written as files of their own (`response_file`): SRE (2.059 SRF, 2.014 FBI,
2.015 SID, 2.075 ERS rap sheet), ERRT (2.060 MSG), and, with TOTs scfed defines because EBTS has
no transaction for them, IDR (the no-match IDENT response), IAR (the joint IDR/IAR) and I247
(the detainer). Each names the booking in 1.010 TCR and 2.009 OCA.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ..runtime.formats import ORI_PATTERN, is_calendar_date
from .ansi_nist import (
    AnsiNistError,
    Record,
    TaggedRecord,
    Transaction,
    Type4Record,
    Value,
    decode,
    encode,
    field_name,
    text,
)

# 1.002 VER: ANSI/NIST-ITL 1-2011.
VERSION: Final = "0500"
# 1.011 NSR and 1.012 NTR of a transaction without images.
NO_RESOLUTION: Final = "00.00"
# The owner scfed's Type-9 feature block names in 9.176 OOD.
FEATURE_OWNER: Final = "SCFED"
# Type-9 "other feature sets" fields (ANSI/NIST-ITL 1-2011 Table 27: 9.176-9.225).
OOD, PAG, SOD, DTX, FGP, FQS, TPL = 176, 177, 178, 179, 180, 181, 182
# 2.084 AMP codes: amputated, unable to print.
AMPUTATED, UNPRINTABLE = "XX", "UP"
# The most charges one booking carries (as at the JSON edge).
MAX_CHARGES: Final = 20
DISPOSITIONS: Final = ("charged", "convicted", "dismissed", "acquitted")


class EbtsError(AnsiNistError):
    """A well-formed file whose content is not a transaction the SIB takes: the record and
    field, and why."""


@dataclass(frozen=True)
class Limit:
    """An EBTS field's mnemonic and the length of each of its values."""

    mnemonic: str
    shortest: int
    longest: int


# Type-2 fields of a CAR, by number: EBTS's, and scfed's 2.900.
CAR_FIELDS: Final[Mapping[int, Limit]] = {
    9: Limit("OCA", 1, 20),
    18: Limit("NAM", 3, 50),
    20: Limit("POB", 2, 2),
    22: Limit("DOB", 8, 8),
    24: Limit("SEX", 1, 1),
    45: Limit("DOA", 8, 8),
}
# Which of `Car`'s values each of those fields holds.
DESCRIPTIVE: Final[Mapping[str, int]] = {
    "booking_number": 9,
    "nam": 18,
    "pob": 20,
    "dob": 22,
    "sex": 24,
    "doa": 45,
}
# 2.047 ASL items: DOO (date of offense, may be empty) and AOL (arrest offense literal).
AOL_LONGEST: Final = 300
RAC: Final = 25

# The TOT of each answer's file, by the kind the SIB stores it as: EBTS's SRE and ERRT, and
# scfed's own for IDENT's and LESC's answers and the detainer (EBTS has no transaction for them).
ANSWER_TOTS: Final[Mapping[str, str]] = {
    "SRE": "SRE",
    "ERRT": "ERRT",
    "NO-MATCH-IDR": "IDR",
    "IDR/IAR": "IAR",
    "I-247": "I247",
}

# The Type-2 fields scfed defines (2.900 onwards): number -> (mnemonic, what it holds).
SCFED_FIELDS: Final[Mapping[int, tuple[str, str]]] = {
    900: ("NOC", "per ASL charge, in order: NCIC code; disposition; sentence days"),
    910: ("IDM", "IDENT match: Y or N"),
    911: ("IDS", "IDENT match score, 0 to 1"),
    912: ("ENC", "IDENT encounters: id; type; time (UTC, YYYYMMDDHHMMSSZ); status"),
    913: ("FIN", "DHS fingerprint identification number"),
    920: ("ICN", "LESC case number"),
    921: ("IMS", "immigration status"),
    922: ("RMV", "removable: Y or N"),
    923: ("RGR", "removal ground"),
    924: ("CCL", "current charge level: 1, 2, 3 or NONE"),
    925: ("PCL", "prior conviction level: 1, 2, 3 or NONE"),
    926: ("PRI", "enforcement priority 1-3, 0 when not removable"),
    927: ("OTB", "offense table"),
    928: ("DTM", "determined at (UTC, YYYYMMDDHHMMSSZ)"),
    929: ("CCC", "classified current charges: NCIC code; literal; level; category"),
    930: ("CPC", "classified prior convictions: NCIC code; literal; level; category"),
    940: ("DID", "detainer id"),
    941: ("DFO", "issuing field office ORI"),
    942: ("DLV", "offense level: 1, 2, 3 or NONE"),
    943: ("DBS", "basis of the detainer"),
    944: ("DIS", "issued at (UTC, YYYYMMDDHHMMSSZ)"),
    945: ("DNR", "notify before release: Y or N"),
    946: ("DMH", "maximum hold hours"),
}


@dataclass(frozen=True)
class Finger:
    """One finger slot: present with its template and quality, amputated or unprintable."""

    position: int
    status: str
    quality: int = 0
    template: tuple[float, ...] = ()


@dataclass(frozen=True)
class Charge:
    """One charge: its NCIC code, literal, disposition and sentence."""

    ncic_code: str
    literal: str
    disposition: str = "charged"
    sentence_days: int = 0


@dataclass(frozen=True)
class Car:
    """A CAR as the SIB reads it: the booking, and the records it did not use."""

    tcn: str
    ori: str
    dai: str
    dat: str
    booking_number: str
    nam: str
    fingers: tuple[Finger, ...]
    charges: tuple[Charge, ...]
    dob: str = ""
    sex: str = ""
    pob: str = ""
    doa: str = ""
    ignored: tuple[str, ...] = field(default=(), compare=False)


# --- reading a CAR ----------------------------------------------------------------------------


def _error(reason: str, index: int, rtype: int, number: int | None = None) -> EbtsError:
    fld = field_name(rtype, number) if number is not None else ""
    return EbtsError(reason, record=index, rtype=rtype, fld=fld)


def _single(record: TaggedRecord, index: int, number: int, limit: Limit | None = None) -> str:
    """The one value of a single-valued field ("" when absent), within its length."""
    value = record.get(number)
    if value is None:
        return ""
    if len(value) != 1 or len(value[0]) != 1:
        raise _error("takes one value (no subfields or items)", index, record.type, number)
    result = value[0][0]
    if limit is not None:
        _length(result, limit, index, record.type, number)
    return result


def _length(value: str, limit: Limit, index: int, rtype: int, number: int) -> None:
    if not limit.shortest <= len(value) <= limit.longest:
        size = (
            f"{limit.longest} characters"
            if limit.shortest == limit.longest
            else f"{limit.shortest} to {limit.longest} characters"
        )
        raise _error(f"{limit.mnemonic} is {size}, got {len(value)}", index, rtype, number)


def _date(value: str, index: int, rtype: int, number: int, mnemonic: str) -> str:
    if value and not is_calendar_date(value):
        raise _error(
            f"{mnemonic} must be a date YYYYMMDD, got {value[:12]!r}", index, rtype, number
        )
    return value


def _ori(value: str, index: int, number: int, mnemonic: str) -> str:
    if not ORI_PATTERN.fullmatch(value):
        raise _error(
            f"{mnemonic} must be nine characters, a state code then 7 of A-Z/0-9, "
            f"got {value[:12]!r}",
            index,
            1,
            number,
        )
    return value


def _header(header: TaggedRecord) -> dict[str, str]:
    tot = _single(header, 1, 4)
    if not tot:
        raise _error("TOT is required", 1, 1, 4)
    if tot != "CAR":
        raise _error(
            f"TOT {tot[:8]!r} is not taken here: the SIB's edge takes CAR (Criminal Answer "
            "Required) transactions",
            1,
            1,
            4,
        )
    version = _single(header, 1, 2)
    if len(version) != 4 or not version.isdigit():
        raise _error(f"VER must be four digits (0500), got {version[:8]!r}", 1, 1, 2)
    dat = _single(header, 1, 5)
    if not is_calendar_date(dat):
        raise _error(f"DAT must be a date YYYYMMDD, got {dat[:12]!r}", 1, 1, 5)
    tcn = _single(header, 1, 9)
    if not 1 <= len(tcn) <= 40:
        raise _error(f"TCN is 1 to 40 characters, got {len(tcn)}", 1, 1, 9)
    return {
        "tcn": tcn,
        "dat": dat,
        "dai": _ori(_single(header, 1, 7), 1, 7, "DAI"),
        "ori": _ori(_single(header, 1, 8), 1, 8, "ORI"),
    }


def _charges(record: TaggedRecord, index: int) -> tuple[Charge, ...]:
    asl = record.get(47)
    if asl is None:
        raise _error("ASL is required: a CAR carries at least one charge", index, 2, 47)
    if len(asl) > MAX_CHARGES:
        raise _error(f"at most {MAX_CHARGES} charges, got {len(asl)}", index, 2, 47)
    codes = record.get(900)
    if codes is None:
        raise _error("NOC is required: the NCIC code of each ASL charge", index, 2, 900)
    if len(codes) != len(asl):
        raise _error(
            f"NOC has {len(codes)} subfields, one per ASL charge ({len(asl)})", index, 2, 900
        )
    charges = []
    for i, (literal, code) in enumerate(zip(asl, codes, strict=True), start=1):
        if len(literal) != 2:
            raise _error(f"ASL subfield {i} has items DOO and AOL", index, 2, 47)
        doo, aol = literal
        _date(doo, index, 2, 47, f"DOO of ASL subfield {i}")
        if not 1 <= len(aol) <= AOL_LONGEST:
            raise _error(
                f"AOL of subfield {i} is 1 to {AOL_LONGEST} characters, got {len(aol)}",
                index,
                2,
                47,
            )
        if not 1 <= len(code) <= 3:
            raise _error(f"subfield {i} is NCIC code; disposition; sentence days", index, 2, 900)
        ncic = code[0]
        if len(ncic) != 4 or not ncic.isdigit() or not ncic.isascii():
            raise _error(f"subfield {i}: NCIC code is four digits, got {ncic[:8]!r}", index, 2, 900)
        disposition = (code[1] if len(code) > 1 else "") or "charged"
        if disposition not in DISPOSITIONS:
            raise _error(
                f"subfield {i}: disposition is one of {', '.join(DISPOSITIONS)}", index, 2, 900
            )
        days = code[2] if len(code) > 2 else ""
        if days and (
            len(days) > 5 or not days.isdigit() or not days.isascii() or int(days) > 36_525
        ):
            raise _error(f"subfield {i}: sentence days is 0 to 36525", index, 2, 900)
        charges.append(Charge(ncic, aol, disposition, int(days or 0)))
    return tuple(charges)


def _missing_fingers(record: TaggedRecord, index: int) -> list[Finger]:
    amp = record.get(84)
    fingers = []
    for i, subfield in enumerate(amp or (), start=1):
        if len(subfield) != 2 or subfield[1] not in (AMPUTATED, UNPRINTABLE):
            raise _error(f"subfield {i} is FGP then AMPCD XX or UP", index, 2, 84)
        position = _position(subfield[0], index, 2, 84)
        status = "amputated" if subfield[1] == AMPUTATED else "unprintable"
        fingers.append(Finger(position, status))
    return fingers


def _position(value: str, index: int, rtype: int, number: int) -> int:
    if len(value) > 2 or not value.isdigit() or not value.isascii() or not 1 <= int(value) <= 10:
        raise _error(f"finger position is 1 to 10, got {value[:8]!r}", index, rtype, number)
    return int(value)


def _finger(record: TaggedRecord, index: int) -> Finger:
    """The finger in scfed's Type-9 feature block."""
    position = _position(_single(record, index, FGP), index, 9, FGP)
    quality_text = _single(record, index, FQS)
    if (
        len(quality_text) > 3
        or not quality_text.isdigit()
        or not quality_text.isascii()
        or int(quality_text) > 100
    ):
        raise _error(f"FQS is a quality 0 to 100, got {quality_text[:8]!r}", index, 9, FQS)
    hexed = _single(record, index, TPL)
    if not hexed or len(hexed) % 8 or len(hexed) > 8 * 1024:
        raise _error(
            f"TPL is float32 values, 8 hexadecimal digits each, got {len(hexed)} digits",
            index,
            9,
            TPL,
        )
    try:
        raw = bytes.fromhex(hexed)
    except ValueError:
        raise _error(
            "TPL holds characters that are not hexadecimal digits", index, 9, TPL
        ) from None
    values = struct.unpack(f">{len(raw) // 4}f", raw)
    if not all(math.isfinite(v) for v in values):
        raise _error("TPL holds NaN or infinite values", index, 9, TPL)
    return Finger(position, "present", int(quality_text), values)


def read_car(data: bytes) -> Car:
    """The CAR in `data`; AnsiNistError for a file that does not decode, EbtsError for one
    that is not a CAR the SIB takes."""
    transaction = decode(data)
    header = _header(transaction.header)
    type2 = [(i, r) for i, r in enumerate(transaction.records, start=2) if r.type == 2]
    if len(type2) != 1:
        raise EbtsError(f"a CAR has exactly one Type-2 record, this file has {len(type2)}")
    index, descriptive = type2[0]
    assert isinstance(descriptive, TaggedRecord)
    if RAC in descriptive.fields:
        raise _error(
            "RAC: race is not accepted; IDENT/IAFIS may not be used for racial or ethnic "
            "profiling (MOA VIII)",
            index,
            2,
            RAC,
        )
    values = {
        name: _single(descriptive, index, number, CAR_FIELDS[number])
        for name, number in DESCRIPTIVE.items()
    }
    if not values["nam"]:
        raise _error("NAM is required", index, 2, 18)
    if not values["booking_number"]:
        raise _error("OCA is required: the booking number", index, 2, 9)
    if any(not (c.isascii() and (c.isalnum() or c == "-")) for c in values["booking_number"]):
        raise _error("OCA (the booking number) is letters, digits and '-'", index, 2, 9)
    if values["sex"] and values["sex"] not in ("M", "F", "X", "U"):
        raise _error(f"SEX is M, F, X or U, got {values['sex']!r}", index, 2, 24)
    _date(values["dob"], index, 2, 22, "DOB")
    _date(values["doa"], index, 2, 45, "DOA")
    fingers, ignored = _fingers(transaction.records, descriptive, index)
    return Car(
        **header, **values, fingers=fingers, charges=_charges(descriptive, index), ignored=ignored
    )


def _fingers(
    records: Sequence[Record], descriptive: TaggedRecord, type2_index: int
) -> tuple[tuple[Finger, ...], tuple[str, ...]]:
    """The finger slots (sorted by position) and a line for each record left unused."""
    slots: dict[int, Finger] = {}
    ignored: list[str] = []
    for finger in _missing_fingers(descriptive, type2_index):
        if finger.position in slots:
            raise _error(f"finger {finger.position} is listed twice", type2_index, 2, 84)
        slots[finger.position] = finger
    for index, record in enumerate(records, start=2):
        if isinstance(record, Type4Record):
            ignored.append(
                f"record {index} (Type-4 image, FGP {record.fgp[0]}): images are not read"
            )
        elif record.type == 9:
            if _single(record, index, OOD) != FEATURE_OWNER:
                ignored.append(f"record {index} (Type-9): not scfed's feature block (9.176 OOD)")
                continue
            finger = _finger(record, index)
            if finger.position in slots:
                raise _error(
                    f"finger {finger.position} is given twice (Type-9 or 2.084 AMP)", index, 9, FGP
                )
            slots[finger.position] = finger
        elif record.type >= 10:
            ignored.append(f"record {index} (Type-{record.type} image): images are not read")
    if not any(f.status == "present" for f in slots.values()):
        raise EbtsError(
            "a CAR carries the prints: no Type-9 record with scfed's feature block (9.176 OOD "
            f"{FEATURE_OWNER}) holds a finger template"
            + ("; image records are not read" if ignored else "")
        )
    return tuple(slots[p] for p in sorted(slots)), tuple(ignored)


# --- writing a CAR ----------------------------------------------------------------------------


def template_hex(values: Sequence[float]) -> str:
    """A template as 9.182 TPL writes it: big-endian float32, 8 hex digits each."""
    return struct.pack(f">{len(values)}f", *values).hex().upper()


def feature_record(finger: Finger, *, algorithm: str) -> TaggedRecord:
    """The Type-9 record carrying one present finger's template in scfed's feature block."""
    return TaggedRecord(
        9,
        {
            2: text("0"),
            3: text("1"),
            4: text("U"),
            OOD: text(FEATURE_OWNER),
            PAG: text(algorithm),
            SOD: text("scfed synthetic tenprint extractor"),
            DTX: text("scfed README: EBTS at the SIB's edge"),
            FGP: text(str(finger.position)),
            FQS: text(str(finger.quality)),
            TPL: text(template_hex(finger.template)),
        },
    )


def write_car(car: Car, *, algorithm: str) -> bytes:
    """The CAR file for `car` (the inverse of `read_car`)."""
    header = {
        2: text(VERSION),
        4: text("CAR"),
        5: text(car.dat),
        7: text(car.dai),
        8: text(car.ori),
        9: text(car.tcn),
        11: text(NO_RESOLUTION),
        12: text(NO_RESOLUTION),
    }
    descriptive: dict[int, Value] = {
        2: text("0"),
        9: text(car.booking_number),
        18: text(car.nam),
        47: tuple(("", c.literal) for c in car.charges),
        900: tuple((c.ncic_code, c.disposition, str(c.sentence_days)) for c in car.charges),
    }
    for number, value in ((20, car.pob), (22, car.dob), (24, car.sex), (45, car.doa)):
        if value:
            descriptive[number] = text(value)
    missing = [f for f in car.fingers if f.status != "present"]
    if missing:
        code = {"amputated": AMPUTATED, "unprintable": UNPRINTABLE}
        descriptive[84] = tuple((f"{f.position:02d}", code[f.status]) for f in missing)
    records: list[Record] = [TaggedRecord(2, descriptive)]
    present = [f for f in car.fingers if f.status == "present"]
    for idc, finger in enumerate(present, start=1):
        record = feature_record(finger, algorithm=algorithm)
        records.append(TaggedRecord(9, {**record.fields, 2: text(str(idc))}))
    return encode(Transaction(TaggedRecord(1, header), tuple(records)))


# --- the answers --------------------------------------------------------------------------------


def _stamp(value: str) -> str:
    """A protobuf JSON time as EBTS writes a GMT: YYYYMMDDHHMMSSZ ("" when unset)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y%m%d%H%M%SZ")


def _suffix(value: str, prefix: str) -> str:
    return value.removeprefix(prefix) if value else ""


def _put(fields: dict[int, Value], number: int, value: str) -> None:
    """Sets a single-valued field when there is a value."""
    if value:
        fields[number] = text(value)


def _chunks(message: str, size: int = AOL_LONGEST) -> Value:
    """A long message as subfields of at most `size` characters (2.060 MSG's limit)."""
    return text(*(message[i : i + size] for i in range(0, len(message), size))) or text("-")


@dataclass(frozen=True)
class ResponseMeta:
    """What a response file says about where it comes from and which booking it answers."""

    tcn: str
    booking_number: str
    lea_ori: str
    sender_ori: str
    number: int
    received_at: datetime


def _history(history: Mapping[str, Any]) -> str:
    """The rap sheet as the text of 2.075 ERS: one line per arrest cycle."""
    lines = [f"FBI {history.get('fbi_number', '')}"]
    for i, cycle in enumerate(history.get("cycles", []), start=1):
        charges = "; ".join(
            f"{c.get('ncic_code', '')} {c.get('literal', '')} "
            f"({_suffix(c.get('disposition', ''), 'DISPOSITION_')})"
            for c in cycle.get("charges", [])
        )
        lines.append(
            f"CYCLE {i} DOA {cycle.get('doa', '')} ORI {cycle.get('ori', '')} "
            f"SID {cycle.get('sid', '')}: {charges}"
        )
    return "\n".join(lines)


def _level(value: str) -> str:
    return _suffix(value, "OFFENSE_LEVEL_")


def _identifiers(fields: dict[int, Value], *, a_number: str, fin: str, fbi: str) -> None:
    _put(fields, 14, fbi)
    if a_number:
        fields[17] = text(("AR-" + a_number.removeprefix("A"),))
    _put(fields, 913, fin)


def _classified(charges: Sequence[Mapping[str, Any]]) -> Value:
    return tuple(
        (
            c.get("charge", {}).get("ncic_code", "") or "-",
            c.get("charge", {}).get("literal", "") or "-",
            _level(c.get("level", "")) or "-",
            c.get("category", "") or "-",
        )
        for c in charges
    )


def _response_fields(kind: str, body: Mapping[str, Any]) -> dict[int, Value]:
    """The Type-2 fields of one answer, from its stored protobuf JSON."""
    fields: dict[int, Value] = {}
    if kind == "SRE":
        _put(fields, 14, body.get("fbi_number", ""))
        _put(fields, 15, body.get("sid", ""))
        _put(fields, 59, body.get("identification", ""))
        if body.get("history"):
            fields[75] = text(_history(body["history"]))
        return fields
    if kind == "ERRT":
        errt = body.get("errt", {})
        fields[60] = _chunks(f"{errt.get('code', '')}: {errt.get('reason', '')}".strip(": "))
        return fields
    if kind == "I-247":
        d = body.get("detainer", {})
        _identifiers(
            fields,
            a_number=d.get("a_number", ""),
            fin=d.get("fin", ""),
            fbi=d.get("fbi_number", ""),
        )
        _put(fields, 18, d.get("nam", ""))
        _put(fields, 940, d.get("detainer_id", ""))
        _put(fields, 941, d.get("field_office", ""))
        _put(fields, 942, _level(d.get("level", "")))
        _put(fields, 943, _suffix(d.get("basis", ""), "DETAINER_BASIS_"))
        _put(fields, 944, _stamp(d.get("issued_at", "")))
        fields[945] = text("Y" if d.get("notify_before_release") else "N")
        _put(fields, 946, str(d.get("max_hold_hours", "")))
        return fields
    # NO-MATCH-IDR or IDR/IAR.
    response = body.get("no_match") or body.get("joint") or {}
    idr = response.get("idr", {})
    fields[910] = text("Y" if idr.get("match") else "N")
    if idr.get("match"):
        _put(fields, 911, f"{float(idr.get('score', 0.0)):.4f}")
    descriptors = idr.get("descriptors", {})
    for number, name in ((18, "nam"), (20, "pob"), (22, "dob"), (24, "sex")):
        _put(fields, number, descriptors.get(name, ""))
    encounters = idr.get("encounters", [])
    if encounters:
        fields[912] = tuple(
            (
                e.get("encounter_id", "") or "-",
                e.get("encounter_type", "") or "-",
                _stamp(e.get("encountered_at", "")) or "-",
                _suffix(e.get("status", ""), "IMMIGRATION_STATUS_") or "-",
            )
            for e in encounters
        )
    iar = response.get("iar")
    _identifiers(
        fields,
        a_number=(iar or idr).get("a_number", ""),
        fin=(iar or idr).get("fin", ""),
        fbi=(iar or {}).get("fbi_number", ""),
    )
    if iar is None:
        return fields
    _put(fields, 920, iar.get("case_id", ""))
    _put(fields, 921, _suffix(iar.get("status", ""), "IMMIGRATION_STATUS_"))
    fields[922] = text("Y" if iar.get("removable") else "N")
    _put(fields, 923, iar.get("removal_ground", ""))
    _put(fields, 924, _level(iar.get("current_charge_level", "")))
    _put(fields, 925, _level(iar.get("prior_conviction_level", "")))
    fields[926] = text(str(iar.get("priority", 0)))
    _put(fields, 927, iar.get("offense_table", ""))
    _put(fields, 928, _stamp(iar.get("determined_at", "")))
    for number, name in ((929, "current_charges"), (930, "prior_convictions")):
        if iar.get(name):
            fields[number] = _classified(iar[name])
    return fields


def response_file(kind: str, body: Mapping[str, Any], meta: ResponseMeta) -> bytes:
    """One answer to a booking (SRE, ERRT, NO-MATCH-IDR, IDR/IAR or I-247, as the SIB stores
    it in protobuf JSON) as an EBTS file addressed to the LEA."""
    if kind not in ANSWER_TOTS:
        raise ValueError(f"no EBTS form for a {kind} response")
    tot, fields = ANSWER_TOTS[kind], _response_fields(kind, body)
    header = {
        2: text(VERSION),
        4: text(tot),
        5: text(meta.received_at.strftime("%Y%m%d")),
        7: text(meta.lea_ori),
        8: text(meta.sender_ori),
        9: text(f"{meta.tcn}-{meta.number}"),
        10: text(meta.tcn),
        11: text(NO_RESOLUTION),
        12: text(NO_RESOLUTION),
        14: text(meta.received_at.strftime("%Y%m%d%H%M%SZ")),
    }
    fields[2] = text("0")
    fields[9] = text(meta.booking_number)
    return encode(Transaction(TaggedRecord(1, header), (TaggedRecord(2, fields),)))


# --- reading any file, for people -----------------------------------------------------------

# Mnemonics of the fields the SIB reads or writes (Type-1, Type-2 and scfed's Type-9 block).
MNEMONICS: Final[Mapping[tuple[int, int], str]] = {
    **{
        (1, n): m
        for n, m in {
            1: "LEN",
            2: "VER",
            3: "CNT",
            4: "TOT",
            5: "DAT",
            6: "PRY",
            7: "DAI",
            8: "ORI",
            9: "TCN",
            10: "TCR",
            11: "NSR",
            12: "NTR",
            14: "GMT",
        }.items()
    },
    **{(2, n): limit.mnemonic for n, limit in CAR_FIELDS.items()},
    **{(2, n): m for n, (m, _what) in SCFED_FIELDS.items()},
    (2, 1): "LEN",
    (2, 2): "IDC",
    (2, 14): "FBI",
    (2, 15): "SID",
    (2, 17): "MNU",
    (2, 47): "ASL",
    (2, 59): "SRF",
    (2, 60): "MSG",
    (2, 75): "ERS",
    (2, 84): "AMP",
    (9, 2): "IDC",
    (9, 3): "IMP",
    (9, 4): "FMT",
    (9, OOD): "OOD",
    (9, PAG): "PAG",
    (9, SOD): "SOD",
    (9, DTX): "DTX",
    (9, FGP): "FGP",
    (9, FQS): "FQS",
    (9, TPL): "TPL",
}


def describe(data: bytes) -> str:
    """A file as text a person reads: each record, then each field with its mnemonic, subfields
    on lines of their own and items separated by " | " (AnsiNistError when it does not
    decode)."""
    transaction = decode(data)
    lines = []
    for index, record in enumerate((transaction.header, *transaction.records), start=1):
        if isinstance(record, Type4Record):
            lines.append(
                f"record {index}: Type-4 image, IDC {record.idc}, FGP {record.fgp[0]}, "
                f"{record.hll}x{record.vll}, {len(record.image)} bytes"
            )
            continue
        lines.append(f"record {index}: Type-{record.type}")
        for number, value in sorted(record.fields.items()):
            name = field_name(record.type, number)
            mnemonic = MNEMONICS.get((record.type, number), "")
            rows = [" | ".join(items) for items in value]
            first, *rest = "\n".join(rows).splitlines() or [""]
            lines.append(f"  {name} {mnemonic:<4} {first}")
            lines.extend(f"  {'':5} {'':<4} {row}" for row in rest)
        if record.data is not None:
            lines.append(f"  {field_name(record.type, 999)} DATA {len(record.data)} bytes")
    return "\n".join(lines)
