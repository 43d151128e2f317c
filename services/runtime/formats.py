"""How the agencies write their identifiers and dates: one pattern each, for every checker.

The pattern strings serve pydantic fields (anchored there with `anchored`), the compiled forms
serve the domain checks and the synthetic world, so the three can never disagree.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

# ORI: a two-letter state code, then seven of [A-Z0-9] (NCIC originating agency identifier).
ORI: Final = r"[A-Z]{2}[A-Z0-9]{7}"
# A state's two-letter postal code.
STATE_CODE: Final = r"[A-Z]{2}"
# A date written YYYYMMDD (EBTS DOA, DOB).
YYYYMMDD: Final = r"[0-9]{8}"
# An NCIC offense code: exactly four digits.
NCIC_CODE: Final = r"[0-9]{4}"

ORI_PATTERN: Final = re.compile(ORI)
STATE_CODE_PATTERN: Final = re.compile(STATE_CODE)
YYYYMMDD_PATTERN: Final = re.compile(YYYYMMDD)
NCIC_CODE_PATTERN: Final = re.compile(NCIC_CODE)


def anchored(pattern: str) -> str:
    """The pattern matched against a whole string (pydantic searches unless anchored)."""
    return f"^{pattern}$"


def is_calendar_date(value: str) -> bool:
    """True for a real calendar date written YYYYMMDD."""
    if not YYYYMMDD_PATTERN.fullmatch(value):
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def iso_day(yyyymmdd: str) -> str:
    """A YYYYMMDD day written YYYY-MM-DD, as people read it in journals and reports."""
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"
