"""Secure Communities offense levels by NCIC code (Appendix A, 2009).

Two versions of Appendix A exist and disagree on several rows: the Strategic Plan's (July 21,
2009) and the MOA's (with the National Security footnote). Both are versioned data in
``services/lesc/data/appendix_a_*.toml``; a deployment picks one by name (``TABLE_NAMES``,
default ``DEFAULT_TABLE``). ``services/lesc/APPENDIX_A.md`` lists where they differ.

How a code resolves against one table:

- Codes are exactly four ASCII digits, "0000" to "9999". Anything else ("", "901", "12345",
  "ab12", " 0901") is refused with ``InvalidNcicCode``; nothing is padded or trimmed.
- Overlaps: when a code lies in the ranges of several categories, the most serious level wins
  (the lowest level number); between categories of the same level, the one listed first in the
  table wins. The MOA lists 2099 under both Arson (Level 2) and Military (Level 3), so 2099 is
  Arson, Level 2.
- Gaps: a code in no range is "Other offenses", Level 3 (MOA III.B.ii: "Level 3: Individuals who
  have been convicted of other offenses"), e.g. 2450, which the MOA's Stolen Vehicles
  (2401-2411, 2499) leaves out.
- Drugs: the tables print no NCIC codes for drugs; we assume the NCIC Dangerous Drugs range
  3501-3599. A sentence over 365 days is Level 1 "Drugs (sentence > 1 year)"; 365 days or less
  is Level 2 "Drugs (sentence <= 1 year)" (exactly one year is not "more than one year"); no
  known sentence (a charge not yet adjudicated) is Level 2 "Drugs (sentence unknown)", since
  the graver level is never assumed. A negative sentence is refused with ``ValueError``. The
  sentence plays no part for codes outside sentence-ruled rows.
"""

from __future__ import annotations

import enum
import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..runtime.formats import NCIC_CODE_PATTERN

TABLE_NAMES: tuple[str, ...] = ("moa", "strategic-plan")
DEFAULT_TABLE = "moa"

OTHER_OFFENSES = "Other offenses"
OTHER_OFFENSES_LEVEL = 3
ONE_YEAR_IN_DAYS = 365
LEVELS: tuple[int, ...] = (1, 2, 3)

_TABLE_FILES: Mapping[str, str] = {
    "moa": "appendix_a_moa.toml",
    "strategic-plan": "appendix_a_strategic_plan.toml",
}
_HEADER_KEYS = frozenset({"name", "version", "title", "source", "category"})
_ROW_KEYS = frozenset(
    {"name", "printed", "level", "codes", "sentence_rule", "unknown_sentence_category"}
)
# [0-9], not \d: \d also matches non-ASCII digits such as Arabic-Indic ones.
_RANGE = re.compile(r"([0-9]{4})(?:-([0-9]{4}))?")


class InvalidNcicCode(ValueError):
    """An NCIC offense code that is not exactly four digits."""

    def __init__(self, code: object) -> None:
        super().__init__(f"NCIC code must be four digits 0000-9999, got {code!r}")
        self.code = code


class UnknownOffenseTable(ValueError):
    """A name that is not one of the Appendix A tables in ``TABLE_NAMES``."""

    def __init__(self, name: object) -> None:
        choices = ", ".join(TABLE_NAMES)
        super().__init__(f"unknown Appendix A table {name!r}; choose one of: {choices}")
        self.name = name


class SentenceRule(enum.StrEnum):
    """Which sentences a drug row of Appendix A admits."""

    MORE_THAN_ONE_YEAR = "more-than-one-year"
    ONE_YEAR_OR_LESS = "one-year-or-less"

    def admits(self, sentence_days: int) -> bool:
        """Say whether a known sentence of ``sentence_days`` days falls under this rule."""
        if self is SentenceRule.MORE_THAN_ONE_YEAR:
            return sentence_days > ONE_YEAR_IN_DAYS
        return sentence_days <= ONE_YEAR_IN_DAYS


@dataclass(frozen=True)
class CodeRange:
    """An inclusive range of NCIC codes; a single code is a range of one."""

    start: int
    end: int

    def __post_init__(self) -> None:
        """Refuse a range outside 0000-9999 or one that ends before it starts."""
        if not 0 <= self.start <= self.end <= 9999:
            raise ValueError(f"NCIC range must satisfy 0000 <= start <= end <= 9999, got {self}")

    @classmethod
    def parse(cls, text: str) -> CodeRange:
        """Read "NNNN" or "NNNN-NNNN" as written in the Appendix A data files."""
        match = _RANGE.fullmatch(text)
        if match is None:
            raise ValueError(f"NCIC range must be 'NNNN' or 'NNNN-NNNN', got {text!r}")
        start, end = match.group(1), match.group(2) or match.group(1)
        return cls(start=int(start), end=int(end))

    def __contains__(self, number: object) -> bool:
        """Say whether a code, given as its integer value, lies in this range."""
        return isinstance(number, int) and self.start <= number <= self.end

    def __str__(self) -> str:
        """Write the range as the tables print it."""
        if self.start == self.end:
            return f"{self.start:04d}"
        return f"{self.start:04d}-{self.end:04d}"


@dataclass(frozen=True)
class OffenseCategory:
    """One row of an Appendix A table: a named category, its level and its NCIC codes."""

    name: str
    level: int
    ranges: tuple[CodeRange, ...]
    printed: str = ""
    sentence_rule: SentenceRule | None = None
    unknown_sentence_category: str | None = None

    def __post_init__(self) -> None:
        """Refuse a row whose level, codes or sentence fields cannot be used."""
        if self.level not in LEVELS:
            raise ValueError(f"category {self.name!r}: level must be 1, 2 or 3, got {self.level}")
        if not self.ranges:
            raise ValueError(f"category {self.name!r}: needs at least one NCIC code")
        if self.unknown_sentence_category is not None and self.sentence_rule is None:
            raise ValueError(
                f"category {self.name!r}: unknown_sentence_category needs a sentence_rule"
            )

    def category_for(self, number: int, sentence_days: int | None) -> str | None:
        """Name the category this row gives a code and sentence, or None if it does not apply."""
        if not any(number in code_range for code_range in self.ranges):
            return None
        if self.sentence_rule is None:
            return self.name
        if sentence_days is None:
            return self.unknown_sentence_category
        return self.name if self.sentence_rule.admits(sentence_days) else None


@dataclass(frozen=True)
class Classification:
    """The level and category one Appendix A table gives an NCIC code."""

    code: str
    level: int
    category: str
    table: str

    def as_dict(self) -> dict[str, object]:
        """Return the classification as a plain mapping of code, level, category and table."""
        return {
            "code": self.code,
            "level": self.level,
            "category": self.category,
            "table": self.table,
        }


@dataclass(frozen=True)
class OffenseTable:
    """One version of Appendix A: its header and its category rows in printed order."""

    name: str
    version: str
    title: str
    source: str
    rows: tuple[OffenseCategory, ...]

    def classify(self, code: str, *, sentence_days: int | None = None) -> Classification:
        """Classify an NCIC code, with the sentence in days when known (it matters for drugs)."""
        if not isinstance(code, str) or NCIC_CODE_PATTERN.fullmatch(code) is None:
            raise InvalidNcicCode(code)
        if sentence_days is not None and sentence_days < 0:
            raise ValueError(f"sentence_days must be zero or more, got {sentence_days}")
        number = int(code)
        level, category = OTHER_OFFENSES_LEVEL, OTHER_OFFENSES
        found = False
        for row in self.rows:
            row_category = row.category_for(number, sentence_days)
            # Strictly lower only: on a tie the row listed first keeps the code.
            if row_category is not None and (not found or row.level < level):
                level, category, found = row.level, row_category, True
        return Classification(code=code, level=level, category=category, table=self.name)


def load_table_file(path: Path) -> OffenseTable:
    """Load a deployment's own Appendix A table from a TOML file in the same format."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read offense table {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    table = parse_table(document, origin=str(path))
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,19}", table.name):
        raise ValueError(
            f"{path}: name must be 1 to 20 lower-case letters, digits, '.', '_' or '-', "
            f"got {table.name!r}"
        )
    return table


@functools.cache
def load_table(name: str) -> OffenseTable:
    """Load one Appendix A table by name ("moa" or "strategic-plan") from its data file, or a
    deployment's own table from a path to a ``.toml`` file."""
    if isinstance(name, str) and name.endswith(".toml"):
        return load_table_file(Path(name))
    filename = _TABLE_FILES.get(name) if isinstance(name, str) else None
    if filename is None:
        raise UnknownOffenseTable(name)
    package = __name__.rpartition(".")[0]
    resource = resources.files(package).joinpath("data", filename)
    with resource.open("rb") as handle:
        document = tomllib.load(handle)
    table = parse_table(document, origin=filename)
    if table.name != name:
        raise ValueError(f"{filename}: declares table {table.name!r}, expected {name!r}")
    return table


def parse_table(document: Mapping[str, object], *, origin: str) -> OffenseTable:
    """Build an OffenseTable from a parsed Appendix A data file, refusing malformed entries."""
    _refuse_unknown_keys(document, _HEADER_KEYS, origin)
    rows_value = document.get("category")
    if not isinstance(rows_value, list) or not rows_value:
        raise ValueError(f"{origin}: needs at least one [[category]] entry")
    rows = tuple(
        _parse_row(row, where=f"{origin}: category #{index}")
        for index, row in enumerate(rows_value, start=1)
    )
    return OffenseTable(
        name=_require_str(document, "name", origin),
        version=_require_str(document, "version", origin),
        title=_require_str(document, "title", origin),
        source=_require_str(document, "source", origin),
        rows=rows,
    )


def _parse_row(row: object, *, where: str) -> OffenseCategory:
    """Build one OffenseCategory from a [[category]] entry."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: must be a table, got {type(row).__name__}")
    _refuse_unknown_keys(row, _ROW_KEYS, where)
    name = _require_str(row, "name", where)
    where = f"{where} ({name!r})"
    level = row.get("level")
    if not isinstance(level, int) or isinstance(level, bool):
        raise ValueError(f"{where}: 'level' must be an integer, got {level!r}")
    codes = row.get("codes")
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise ValueError(f"{where}: 'codes' must be a list of strings, got {codes!r}")
    printed = row.get("printed", "")
    if not isinstance(printed, str):
        raise ValueError(f"{where}: 'printed' must be a string, got {printed!r}")
    unknown_category = row.get("unknown_sentence_category")
    if unknown_category is not None and not isinstance(unknown_category, str):
        raise ValueError(f"{where}: 'unknown_sentence_category' must be a string")
    try:
        return OffenseCategory(
            name=name,
            level=level,
            ranges=tuple(CodeRange.parse(code) for code in codes),
            printed=printed,
            sentence_rule=_parse_sentence_rule(row.get("sentence_rule")),
            unknown_sentence_category=unknown_category,
        )
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def _parse_sentence_rule(value: object) -> SentenceRule | None:
    """Read an optional sentence_rule field, refusing values that are not a SentenceRule."""
    if value is None:
        return None
    choices = ", ".join(member.value for member in SentenceRule)
    if not isinstance(value, str) or value not in {member.value for member in SentenceRule}:
        raise ValueError(f"'sentence_rule' must be one of {choices}, got {value!r}")
    return SentenceRule(value)


def _require_str(mapping: Mapping[str, object], key: str, where: str) -> str:
    """Return a non-empty string field or refuse the entry that lacks it."""
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _refuse_unknown_keys(
    mapping: Mapping[str, object], allowed: frozenset[str], where: str
) -> None:
    """Refuse keys the format does not define, so a misspelt field is not silently ignored."""
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
