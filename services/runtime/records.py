"""Validation and plain-data forms of the shared record types (charges, descriptors, dates)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date

from google.protobuf.json_format import MessageToDict, ParseDict

from scfed.common.v1 import common_pb2
from services.runtime.errors import InvalidArgument

NCIC_CODE = re.compile(r"[0-9]{4}")
SEXES = frozenset({"M", "F", "X", "U"})


def check_date(value: str, *, field: str) -> str:
    """Refuses anything but a real calendar date written YYYYMMDD."""
    if not re.fullmatch(r"[0-9]{8}", value):
        raise InvalidArgument(f"{field} must be a date YYYYMMDD, got {value!r}")
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not a calendar date: {value!r}") from exc
    return value


def check_charges(charges: Sequence[common_pb2.Charge], *, field: str = "charges") -> None:
    """Refuses charges without a four-digit NCIC code or a disposition."""
    for i, charge in enumerate(charges):
        if not NCIC_CODE.fullmatch(charge.ncic_code):
            raise InvalidArgument(
                f"{field}[{i}].ncic_code must be four digits, got {charge.ncic_code!r}"
            )
        if charge.disposition == common_pb2.DISPOSITION_UNSPECIFIED:
            raise InvalidArgument(f"{field}[{i}].disposition is required")


def check_descriptors(descriptors: common_pb2.Descriptors, *, field: str = "descriptors") -> None:
    """Refuses descriptors without a name, with a bad DOB or an unknown SEX code."""
    if not descriptors.nam.strip():
        raise InvalidArgument(f"{field}.nam is required")
    if descriptors.dob:
        check_date(descriptors.dob, field=f"{field}.dob")
    if descriptors.sex and descriptors.sex not in SEXES:
        raise InvalidArgument(f"{field}.sex must be one of M, F, X, U, got {descriptors.sex!r}")


def to_plain(message: object) -> dict[str, object]:
    """A JSON-ready dict of a protobuf message, with the proto field names."""
    return MessageToDict(message, preserving_proto_field_name=True)  # type: ignore[arg-type]


def charges_to_plain(charges: Iterable[common_pb2.Charge]) -> list[dict[str, object]]:
    """JSON-ready charges."""
    return [to_plain(c) for c in charges]


def charges_from_plain(items: Iterable[dict[str, object]]) -> list[common_pb2.Charge]:
    """Charges back from their JSON form."""
    return [ParseDict(item, common_pb2.Charge()) for item in items]


def descriptors_from_plain(item: dict[str, object]) -> common_pb2.Descriptors:
    """Descriptors back from their JSON form."""
    return ParseDict(item, common_pb2.Descriptors())
