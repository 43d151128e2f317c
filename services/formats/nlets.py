"""Nlets text of LESC's messages: an IAQ or an IAR as a terminal shows it, and back.

LESC's contract stays gRPC (`scfed.lesc.v1.Iaq`, and the `scfed.cjis_iafis.v1.IarMessage` LESC
answers with); this module writes those messages in the shape of Nlets' legacy text format and
reads such text back to exactly the same protobuf fields (a property test proves it).

The text, line by line:

- The header: `KEY.ORI.DAI.CONTROL.TXT`: the message key (IAQ or IAR), the originating agency
  (the envelope's ORI, the booking LEA), the destination (its DAI: LESC's ORI for an IAQ, CJIS's
  for an IAR) and the control field (the envelope's TCN), as an Nlets header names them.
- An IAR then has LESC's narrative, the lines an officer reads (subject, status, removability,
  offense levels, each charge, the contact), and a blank line. The narrative is made from the
  fields; the parser does not read it.
- Then one field a line: a three-character prefix, a slash, the value, a period
  (`NAM/DOE,JOHN.`). A field ends at its line's last period, so a value keeps its own periods
  and slashes. Optional fields left empty are left out, as a terminal leaves them out.

Prefixes are Nlets' where the IAQ format has one (PUR, NAM, DOB, SEX, POB, CUS, OFF, ARN, FBI,
SID). The fields Nlets has no prefix for (the envelope's other fields, the charge's literal,
disposition and sentence, the booking number, the IDENT match, the criminal history and every
field of the IAR, whose Nlets form is free text) get prefixes of ours, in the layouts below
(`IAQ`, `IAR`); README's "Nlets text" lists them. Repeated and nested records (charges, encounters,
arrest cycles) are groups: a group's first prefix, always written, starts one, and the prefixes
after it belong to the nearest group that has them. Nlets caps field lengths (NAM at 30
characters) and takes one offense code; these take the contract's values whole, every charge.

Nlets text is printable ASCII. Any other character of a value (a line end, a control, an
accented letter) is written as `\\uXXXX` (or `\\UXXXXXXXX`), a backslash as `\\\\`, and, in the
header, whose fields periods separate, a period as `\\u002E`. An enum is written as its name
without the type's prefix (`CHARGED`, `ENTRY_WITHOUT_INSPECTION`, level `1` or `NONE`), or as
its number when it has no name; a time as RFC 3339; a score as the shortest decimal that reads
back to the same 32-bit float; a flag as Y or N.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2

from ..federation import Agency

__all__ = ["NletsError", "parse_iaq", "parse_iar", "render_iaq", "render_iar"]

# How much of a bad line an error quotes.
_QUOTE_CHARS: Final = 60


class NletsError(ValueError):
    """Text that is not an IAQ or IAR of this format (the message names the line and the
    field), or a message that cannot be written as one."""


# --- values ---------------------------------------------------------------------------------

_ESCAPE: Final = re.compile(r"\\(?:(\\)|u([0-9A-F]{4})|U([0-9A-F]{8}))|\\")


def _escape(value: str, *, header: bool = False) -> str:
    """`value` as printable ASCII: a backslash doubled, every other character outside
    printable ASCII (and, in the header, a period) as its code point."""
    out: list[str] = []
    for ch in value:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F and not (header and ch == "."):
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    return "".join(out)


def _unescape(text: str) -> str:
    """The value `_escape` wrote; ValueError for a backslash that starts no escape or one
    that names no character."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "\\"
        digits = match.group(2) or match.group(3)
        if digits is None:
            raise ValueError(
                f"a backslash that starts no escape (\\\\, \\uXXXX or \\UXXXXXXXX) at "
                f"character {match.start() + 1}"
            )
        code = int(digits, 16)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"\\u{digits} is a surrogate, not a character")
        if code > 0x10FFFF:
            raise ValueError(f"\\U{digits} is beyond the last Unicode character")
        return chr(code)

    return _ESCAPE.sub(replace, text)


@dataclass(frozen=True)
class Codec:
    """How one kind of protobuf field is written in a line and read back."""

    # Whether a field not leading its group is written (its value is not the default, or,
    # for a message-typed field, it is present).
    present: Callable[[Message, str], bool]
    write: Callable[[Message, str], str]
    # Sets the field from the text; ValueError saying why it cannot.
    read: Callable[[Message, str, str], None]


def _text_read(message: Message, name: str, text: str) -> None:
    setattr(message, name, _unescape(text))


TEXT: Final = Codec(
    present=lambda m, name: getattr(m, name) != "",
    write=lambda m, name: _escape(getattr(m, name)),
    read=_text_read,
)

_UINT32_MAX: Final = 2**32 - 1
_DIGITS: Final = re.compile(r"[0-9]{1,10}")


def _count_read(message: Message, name: str, text: str) -> None:
    if not _DIGITS.fullmatch(text) or int(text) > _UINT32_MAX:
        raise ValueError(f"expected a whole number from 0 to {_UINT32_MAX}")
    setattr(message, name, int(text))


COUNT: Final = Codec(
    present=lambda m, name: getattr(m, name) != 0,
    write=lambda m, name: str(getattr(m, name)),
    read=_count_read,
)


def _flag_read(message: Message, name: str, text: str) -> None:
    if text not in ("Y", "N"):
        raise ValueError("expected Y or N")
    setattr(message, name, text == "Y")


FLAG: Final = Codec(
    present=lambda m, name: bool(getattr(m, name)),
    write=lambda m, name: "Y" if getattr(m, name) else "N",
    read=_flag_read,
)


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _score_write(message: Message, name: str) -> str:
    """The shortest decimal that reads back to the same 32-bit float (9 digits always do)."""
    value: float = getattr(message, name)
    if not math.isfinite(value):
        return str(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _float32(float(text)) == value:
            return text
    return repr(value)


_DECIMAL: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?|-?inf|nan")


def _score_read(message: Message, name: str, text: str) -> None:
    if not _DECIMAL.fullmatch(text):
        raise ValueError("expected a decimal number such as 0.93")
    setattr(message, name, float(text))


SCORE: Final = Codec(
    # -0.0 is not the default to the wire either.
    present=lambda m, name: getattr(m, name) != 0 or math.copysign(1, getattr(m, name)) < 0,
    write=_score_write,
    read=_score_read,
)


def _time_write(message: Message, name: str) -> str:
    try:
        return str(getattr(message, name).ToJsonString())
    except ValueError as exc:
        raise NletsError(f"{name}: {exc}") from exc


def _time_read(message: Message, name: str, text: str) -> None:
    try:
        getattr(message, name).FromJsonString(text)
    except ValueError as exc:
        raise ValueError("expected an RFC 3339 time such as 2009-10-01T23:00:00Z") from exc


TIME: Final = Codec(
    present=lambda m, name: m.HasField(name),
    write=_time_write,
    read=_time_read,
)

_ENUM_NUMBER: Final = re.compile(r"-?[0-9]{1,10}")


def enum(descriptor: EnumDescriptor, prefix: str) -> Codec:
    """An enum written as its name without `prefix`, or as its number when it has no name."""
    names = ", ".join(v.name.removeprefix(prefix) for v in descriptor.values)

    def write(message: Message, name: str) -> str:
        number: int = getattr(message, name)
        known = descriptor.values_by_number.get(number)
        return known.name.removeprefix(prefix) if known is not None else str(number)

    def read(message: Message, name: str, text: str) -> None:
        known = descriptor.values_by_name.get(prefix + text)
        if known is not None:
            setattr(message, name, known.number)
        elif _ENUM_NUMBER.fullmatch(text) and -(2**31) <= int(text) < 2**31:
            setattr(message, name, int(text))
        else:
            raise ValueError(f"expected a {descriptor.name} ({names}) or its number")

    return Codec(
        present=lambda m, name: getattr(m, name) != 0,
        write=write,
        read=read,
    )


DISPOSITION: Final = enum(common_pb2.Disposition.DESCRIPTOR, "DISPOSITION_")
STATUS: Final = enum(common_pb2.ImmigrationStatus.DESCRIPTOR, "IMMIGRATION_STATUS_")
LEVEL: Final = enum(common_pb2.OffenseLevel.DESCRIPTOR, "OFFENSE_LEVEL_")


# --- the layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One line: its prefix, the field it holds (a path from the group's message) and how."""

    key: str
    path: tuple[str, ...]
    codec: Codec = TEXT

    def owner(self, message: Message) -> tuple[Message, str]:
        """The message that holds the field, and the field's name in it."""
        for name in self.path[:-1]:
            message = getattr(message, name)
        return message, self.path[-1]


def _f(key: str, path: str, codec: Codec = TEXT) -> Field:
    return Field(key, tuple(path.split(".")), codec)


@dataclass(frozen=True)
class Group:
    """A message written as lines: its leading field (always written; it starts the group),
    then its other fields and nested groups in the order they are written."""

    # What it is, in errors ("a charge").
    what: str
    lead: Field | None
    items: tuple[Field | Child, ...] = ()

    def __post_init__(self) -> None:
        # A prefix names one thing in a group, and no group repeats a prefix of a group it is
        # nested in: so a line always belongs to the nearest open group that has its prefix.
        keys = [self.lead.key] if self.lead is not None else []
        keys += [f.key for f in self.fields] + [c.group.lead_key for c in self.children]
        if len(keys) != len(set(keys)):
            raise ValueError(f"{self.what}: a prefix is used twice in {keys}")
        own = {f.key for f in self.fields} | ({self.lead.key} if self.lead else set())
        for child in self.children:
            clash = own & _all_keys(child.group)
            if clash:
                raise ValueError(f"{self.what}: {sorted(clash)} also in {child.group.what}")

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields other than the leading one."""
        return tuple(item for item in self.items if isinstance(item, Field))

    @property
    def children(self) -> tuple[Child, ...]:
        """The nested groups."""
        return tuple(item for item in self.items if isinstance(item, Child))

    @property
    def lead_key(self) -> str:
        """The prefix that starts this group."""
        assert self.lead is not None, "a nested group has a leading field"
        return self.lead.key


def _all_keys(group: Group) -> set[str]:
    """Every prefix written in `group` and the groups nested in it."""
    keys = {group.lead_key} | {f.key for f in group.fields}
    for child in group.children:
        keys |= _all_keys(child.group)
    return keys


@dataclass(frozen=True)
class Child:
    """A nested group: the message field that holds it, one message or a list of them."""

    name: str
    group: Group
    repeated: bool = False


def _descriptors(what: str, nam: str, dob: str, sex: str, pob: str) -> Group:
    return Group(what, _f(nam, "nam"), (_f(dob, "dob"), _f(sex, "sex"), _f(pob, "pob")))


CHARGE: Final = Group(
    "a charge",
    _f("OFF", "ncic_code"),
    (
        _f("OLT", "literal"),
        _f("DSP", "disposition", DISPOSITION),
        _f("SEN", "sentence_days", COUNT),
    ),
)

# The envelope's fields beside the header's (ORI, DAI, TCN): the message id, the booking's TCN
# (TCR), the priority, when it was sent and which service sent it. Its TOT is the message key;
# a TOT that is not is written first after the header (or the narrative), as TOT/.
_ENVELOPE: Final = (
    _f("MID", "envelope.message_id"),
    _f("TCR", "envelope.tcr"),
    _f("PRY", "envelope.pry", COUNT),
    _f("DTE", "envelope.sent_at", TIME),
    _f("SND", "envelope.sender"),
)

IDR: Final = Group(
    "an IDENT response",
    _f("IDR", "match", FLAG),
    (
        _f("FIN", "fin"),
        _f("IAN", "a_number"),
        _f("SCR", "score", SCORE),
        Child("descriptors", _descriptors("IDENT's descriptors", "INM", "IDB", "ISX", "IPB")),
        Child(
            "encounters",
            Group(
                "an encounter",
                _f("ENC", "encounter_id"),
                (
                    _f("ETY", "encounter_type"),
                    _f("EDT", "encountered_at", TIME),
                    _f("EST", "status", STATUS),
                ),
            ),
            repeated=True,
        ),
    ),
)

HISTORY: Final = Group(
    "a criminal history",
    _f("HIS", "fbi_number"),
    (
        Child(
            "cycles",
            Group(
                "an arrest cycle",
                _f("CYC", "ori"),
                (
                    _f("DOA", "doa"),
                    _f("CSI", "sid"),
                    _f("CTN", "tcn"),
                    Child("charges", CHARGE, repeated=True),
                ),
            ),
            repeated=True,
        ),
    ),
)

# Nlets' IAQ fields first, in Nlets' order; then ours.
IAQ: Final = Group(
    "an IAQ",
    None,
    (
        _f("PUR", "pur"),
        Child("descriptors", _descriptors("the subject's descriptors", "NAM", "DOB", "SEX", "POB")),
        _f("CUS", "cus"),
        Child("off", CHARGE, repeated=True),
        _f("ARN", "arn"),
        _f("FBI", "fbi"),
        _f("SID", "sid"),
        _f("BKN", "booking_number"),
        Child("idr", IDR),
        Child("history", HISTORY),
        *_ENVELOPE,
    ),
)


def _classified(what: str, key: str) -> Group:
    return Group(what, _f(key, "level", LEVEL), (_f("CAT", "category"), Child("charge", CHARGE)))


DETERMINATION: Final = Group(
    "a determination",
    _f("CAS", "case_id"),
    (
        _f("FIN", "fin"),
        _f("ARN", "a_number"),
        _f("FBI", "fbi_number"),
        _f("IMS", "status", STATUS),
        _f("REM", "removable", FLAG),
        _f("GRD", "removal_ground"),
        _f("CCL", "current_charge_level", LEVEL),
        _f("PCL", "prior_conviction_level", LEVEL),
        _f("PRI", "priority", COUNT),
        _f("TBL", "offense_table"),
        _f("DET", "determined_at", TIME),
        Child("current_charges", _classified("a current charge", "CUR"), repeated=True),
        Child("prior_convictions", _classified("a prior conviction", "PRC"), repeated=True),
    ),
)

IAR: Final = Group("an IAR", None, (Child("iar", DETERMINATION), *_ENVELOPE))


def _groups(group: Group) -> Iterator[Group]:
    yield group
    for child in group.children:
        yield from _groups(child.group)


def _homes(root: Group) -> dict[str, str]:
    """Each prefix of `root`'s layout and the group it belongs in (for errors)."""
    homes: dict[str, str] = {}
    for group in _groups(root):
        for f in group.fields:
            homes.setdefault(f.key, group.what)
        for child in group.children:
            homes.setdefault(child.group.lead_key, group.what)
    return homes


_HOMES: Final = {"IAQ": _homes(IAQ), "IAR": _homes(IAR)}


# --- writing --------------------------------------------------------------------------------


def _line(key: str, value: str) -> str:
    return f"{key}/{value}."


def _lines(group: Group, message: Message) -> Iterator[str]:
    if group.lead is not None:
        owner, name = group.lead.owner(message)
        yield _line(group.lead.key, group.lead.codec.write(owner, name))
    for item in group.items:
        if isinstance(item, Field):
            owner, name = item.owner(message)
            if item.codec.present(owner, name):
                yield _line(item.key, item.codec.write(owner, name))
        elif item.repeated:
            for each in getattr(message, item.name):
                yield from _lines(item.group, each)
        elif message.HasField(item.name):
            yield from _lines(item.group, getattr(message, item.name))


def _header(key: str, envelope: common_pb2.Envelope) -> list[str]:
    values = (envelope.ori, envelope.dai, envelope.tcn)
    lines = [".".join([key, *(_escape(v, header=True) for v in values), "TXT"])]
    if envelope.tot != key:
        lines.append(_line("TOT", _escape(envelope.tot)))
    return lines


def _render(key: str, group: Group, message: Any, narrative: Sequence[str] = ()) -> str:
    if not message.HasField("envelope"):
        raise NletsError(f"an {key} carries an envelope: its header (ORI, DAI, TCN) is its own")
    lines = _header(key, message.envelope)
    head, fields = lines[:1], lines[1:]
    if narrative:
        head += [*narrative, ""]
    return "\n".join([*head, *fields, *_lines(group, message)]) + "\n"


def render_iaq(iaq: lesc_pb2.Iaq) -> str:
    """The IAQ as Nlets text."""
    return _render("IAQ", IAQ, iaq)


def render_iar(message: cjis_iafis_pb2.IarMessage) -> str:
    """The IAR LESC answered with as Nlets text: LESC's narrative, then the fields."""
    return _render("IAR", IAR, message, narrative(message))


def _words(value: str) -> str:
    return _escape(value.replace("_", " "))


def _level_words(level: int) -> str:
    known = common_pb2.OffenseLevel.DESCRIPTOR.values_by_number.get(level)
    text = known.name.removeprefix("OFFENSE_LEVEL_") if known is not None else str(level)
    return "NONE" if text == "NONE" else f"LEVEL {text}"


def _charge_lines(items: Sequence[common_pb2.ClassifiedCharge]) -> list[str]:
    lines = []
    for item in items:
        charge = item.charge
        disposition = DISPOSITION.write(charge, "disposition")
        category = f" ({_escape(item.category)})" if item.category else ""
        lines.append(
            f"  {_escape(charge.ncic_code)} {_escape(charge.literal)}, {_words(disposition)}: "
            f"{_level_words(item.level)}{category}"
        )
    return lines


def narrative(message: cjis_iafis_pb2.IarMessage) -> list[str]:
    """LESC's narrative of an IAR: what an officer reads first."""
    iar = message.iar
    envelope = message.envelope
    lines = [
        "LAW ENFORCEMENT SUPPORT CENTER - IMMIGRATION ALIEN RESPONSE",
        f"BOOKING {_escape(envelope.tcr)} OF {_escape(envelope.ori)}",
    ]
    if not message.HasField("iar"):
        return [*lines, "NO DETERMINATION IS CARRIED IN THIS MESSAGE.", _contact()]
    determined = _time_write(iar, "determined_at") if iar.HasField("determined_at") else None
    lines += [
        f"LESC CASE {_escape(iar.case_id)}, "
        + (f"DETERMINED {determined}" if determined else "NOT YET ANSWERED"),
        f"SUBJECT: FIN {_escape(iar.fin) or 'NONE'}, A-NUMBER {_escape(iar.a_number) or 'NONE'}, "
        f"FBI {_escape(iar.fbi_number) or 'NONE'}",
        f"IMMIGRATION STATUS: {_words(STATUS.write(iar, 'status'))}",
    ]
    if iar.removable:
        ground = f" ({_escape(iar.removal_ground)})" if iar.removal_ground else ""
        lines.append(f"SUBJECT IS REMOVABLE{ground}, ENFORCEMENT PRIORITY {iar.priority}")
    else:
        lines.append("SUBJECT IS NOT REMOVABLE ON THIS RECORD")
    table = f" ({_escape(iar.offense_table).upper()} TABLE)" if iar.offense_table else ""
    lines.append(
        f"CURRENT CHARGES: {_level_words(iar.current_charge_level)}{table}"
        if iar.current_charges
        else "CURRENT CHARGES: NONE"
    )
    lines += _charge_lines(iar.current_charges)
    lines.append(
        f"PRIOR CONVICTIONS: {_level_words(iar.prior_conviction_level)}"
        if iar.prior_convictions
        else "PRIOR CONVICTIONS: NONE"
    )
    lines += _charge_lines(iar.prior_convictions)
    lines.append("A COPY GOES TO THE ICE FIELD OFFICE COVERING THE BOOKING AGENCY.")
    lines.append(_contact())
    return lines


def _contact() -> str:
    return f"CONTACT: LAW ENFORCEMENT SUPPORT CENTER, ORI {Agency.LESC.ori}, 24 HOURS A DAY"


# --- reading --------------------------------------------------------------------------------

_FIELD_LINE: Final = re.compile(r"([A-Z0-9]{3})/(.*)\.")


def _quote(text: str) -> str:
    if len(text) > _QUOTE_CHARS:
        text = text[:_QUOTE_CHARS] + "..."
    return repr(text)


@dataclass
class _Frame:
    group: Group
    message: Message
    seen: set[str] = field(default_factory=set)


def _read(root: Group, key: str, message: Message, lines: Sequence[tuple[int, str]]) -> None:
    """Reads the field lines into `message`."""
    stack = [_Frame(root, message)]
    for number, line in lines:
        matched = _FIELD_LINE.fullmatch(line)
        if matched is None:
            raise NletsError(
                f"line {number}: expected a field KEY/value. (three capitals or digits, a slash, "
                f"the value, a period), got {_quote(line)}"
            )
        prefix, value = matched.groups()
        _take(stack, key, prefix, value, number)


def _take(stack: list[_Frame], key: str, prefix: str, value: str, number: int) -> None:
    """Puts one field line in the nearest group that has its prefix."""
    where = f"line {number}, {prefix}"
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        for f in frame.group.fields:
            if f.key == prefix:
                del stack[depth + 1 :]
                if prefix in frame.seen:
                    raise NletsError(f"{where}: given twice in {frame.group.what}")
                frame.seen.add(prefix)
                _set(f, frame.message, value, where)
                return
        for child in frame.group.children:
            if child.group.lead_key == prefix:
                del stack[depth + 1 :]
                holder = frame.message
                if child.repeated:
                    item = getattr(holder, child.name).add()
                else:
                    if holder.HasField(child.name):
                        raise NletsError(f"{where}: a second {child.group.what.split(' ', 1)[1]}")
                    item = getattr(holder, child.name)
                    item.SetInParent()
                lead = child.group.lead
                assert lead is not None
                _set(lead, item, value, where)
                stack.append(_Frame(child.group, item, {prefix}))
                return
    home = _HOMES[key].get(prefix)
    if home is None:
        raise NletsError(f"{where}: not a field of an {key}")
    raise NletsError(f"{where}: out of place: it belongs in {home}")


def _set(f: Field, message: Message, value: str, where: str) -> None:
    owner, name = f.owner(message)
    try:
        f.codec.read(owner, name, value)
    except ValueError as exc:
        raise NletsError(f"{where}: {exc}") from exc


def _split(text: str) -> list[tuple[int, str]]:
    """The lines of `text`, numbered from 1; a CR before a line end is dropped (a CR in a
    value is always escaped)."""
    if text.endswith("\n"):
        text = text[:-1]
    return [(n, line.removesuffix("\r")) for n, line in enumerate(text.split("\n"), start=1)]


def _parse(key: str, group: Group, message: Any, text: str, *, narrated: bool) -> None:
    lines = _split(text)
    if not lines or lines == [(1, "")]:
        raise NletsError(f"line 1: the text is empty; an {key} starts with its header")
    number, header = lines[0]
    parts = header.split(".")
    if len(parts) != 5 or parts[0] != key or parts[4] != "TXT":
        raise NletsError(
            f"line 1: expected the header {key}.<ORI>.<DAI>.<control field>.TXT, "
            f"got {_quote(header)}"
        )
    envelope = message.envelope
    envelope.tot = key
    for name, value in zip(("ori", "dai", "tcn"), parts[1:4], strict=True):
        try:
            setattr(envelope, name, _unescape(value))
        except ValueError as exc:
            raise NletsError(f"line 1, {name.upper()}: {exc}") from exc
    rest = lines[1:]
    if narrated:
        blank = next((i for i, (_, line) in enumerate(rest) if line == ""), None)
        if blank is None:
            raise NletsError(
                f"line {number + 1}: no blank line after the narrative; an {key} has its "
                "narrative, a blank line, then its fields"
            )
        rest = rest[blank + 1 :]
    if rest and _FIELD_LINE.fullmatch(rest[0][1]) and rest[0][1].startswith("TOT/"):
        tot_number, tot_line = rest.pop(0)
        try:
            envelope.tot = _unescape(tot_line[4:-1])
        except ValueError as exc:
            raise NletsError(f"line {tot_number}, TOT: {exc}") from exc
    _read(group, key, message, rest)


def parse_iaq(text: str) -> lesc_pb2.Iaq:
    """The IAQ that `render_iaq` wrote as `text`; NletsError names the line and field."""
    message = lesc_pb2.Iaq()
    _parse("IAQ", IAQ, message, text, narrated=False)
    return message


def parse_iar(text: str) -> cjis_iafis_pb2.IarMessage:
    """The IAR that `render_iar` wrote as `text` (its narrative is not read); NletsError names
    the line and field."""
    message = cjis_iafis_pb2.IarMessage()
    _parse("IAR", IAR, message, text, narrated=True)
    return message
