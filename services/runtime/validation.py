"""Checks of the identifiers and shared record types every agency takes in (ORI, dates,
charges, descriptors), refusing bad input with InvalidArgument and the reason."""

from __future__ import annotations

from collections.abc import Sequence

from scfed.common.v1 import common_pb2

from .errors import InvalidArgument, shown
from .formats import (
    NCIC_CODE_PATTERN,
    ORI_PATTERN,
    YYYYMMDD_PATTERN,
    is_calendar_date,
)

SEXES = frozenset({"M", "F", "X", "U"})


def check_ori(ori: str, *, field: str = "ori") -> str:
    """Refuses an ORI that is not nine characters, two letters of state then [A-Z0-9]."""
    if not ORI_PATTERN.fullmatch(ori):
        raise InvalidArgument(
            f"{field} must be nine characters: a two-letter state code then 7 of [A-Z0-9], "
            f"got {shown(ori)}"
        )
    return ori


def check_date(value: str, *, field: str) -> str:
    """Refuses anything but a real calendar date written YYYYMMDD."""
    if not YYYYMMDD_PATTERN.fullmatch(value):
        raise InvalidArgument(f"{field} must be a date YYYYMMDD, got {shown(value)}")
    if not is_calendar_date(value):
        raise InvalidArgument(f"{field} is not a calendar date: {shown(value)}")
    return value


def check_charges(charges: Sequence[common_pb2.Charge], *, field: str = "charges") -> None:
    """Refuses charges without a four-digit NCIC code or a disposition."""
    for i, charge in enumerate(charges):
        if not NCIC_CODE_PATTERN.fullmatch(charge.ncic_code):
            raise InvalidArgument(
                f"{field}[{i}].ncic_code must be four digits, got {shown(charge.ncic_code)}"
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
        raise InvalidArgument(
            f"{field}.sex must be one of M, F, X, U, got {shown(descriptors.sex)}"
        )
