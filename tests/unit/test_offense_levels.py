"""Appendix A offense levels: both 2009 tables, overlaps, gaps, drugs and refused input."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from services.lesc.offense_levels import (
    DEFAULT_TABLE,
    TABLE_NAMES,
    Classification,
    CodeRange,
    InvalidNcicCode,
    OffenseCategory,
    OffenseTable,
    UnknownOffenseTable,
    load_table,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "services" / "lesc" / "data"
DATA_FILES = {
    "moa": DATA_DIR / "appendix_a_moa.toml",
    "strategic-plan": DATA_DIR / "appendix_a_strategic_plan.toml",
}
CODE_OR_RANGE = re.compile(r"([0-9]{4})(?:-([0-9]{4}))?")

# One code inside every printed row, transcribed from the reference text independently of the
# data files: (code, level, category).
MOA_ROWS: list[tuple[str, int, str]] = [
    ("0101", 1, "National Security"),
    ("1602", 1, "National Security"),
    ("5299", 1, "National Security"),
    ("0901", 1, "Homicide"),
    ("1050", 1, "Kidnapping"),
    ("1199", 1, "Sexual Assault"),
    ("1201", 1, "Robbery"),
    ("1350", 1, "Aggravated Assault"),
    ("1601", 1, "Threats"),
    ("2101", 1, "Extortion - Threat to Injure Person"),
    ("3650", 1, "Sex Offenses"),
    ("3802", 1, "Cruelty Toward Child, Wife"),
    ("3803", 1, "Cruelty Toward Child, Wife"),
    ("4801", 1, "Resisting an Officer"),
    ("5203", 1, "Weapon"),
    ("5401", 1, "Hit and Run"),
    ("2001", 2, "Arson"),
    ("2250", 2, "Burglary"),
    ("2399", 2, "Larceny"),
    ("2411", 2, "Stolen Vehicles"),
    ("2499", 2, "Stolen Vehicles"),
    ("2501", 2, "Forgery"),
    ("2650", 2, "Fraud"),
    ("2799", 2, "Embezzlement"),
    ("2801", 2, "Stolen Property"),
    ("2905", 2, "Damage Property w/Explosive"),
    ("5499", 2, "Traffic Offenses"),
    ("5801", 2, "Smuggling"),
    ("6300", 2, "Money Laundering"),
    ("7199", 2, "Property Crimes"),
    ("0201", 3, "Military"),
    ("0350", 3, "Immigration"),
    ("2102", 3, "Extortion"),
    ("2903", 3, "Damage Property"),
    ("3801", 3, "Family Offenses"),
    ("3899", 3, "Family Offenses"),
    ("3901", 3, "Gambling"),
    ("4050", 3, "Commercialized Sex Offenses"),
    ("4199", 3, "Liquor"),
    ("4802", 3, "Obstructing the Police"),
    ("5150", 3, "Bribery"),
    ("5599", 3, "Health and Safety"),
    ("5699", 3, "Civil Rights"),
    ("5701", 3, "Invasion of Privacy"),
    ("5999", 3, "Elections Laws"),
    ("6250", 3, "Conservation"),
    ("7399", 3, "Public Order Crimes"),
]
STRATEGIC_PLAN_ROWS: list[tuple[str, int, str]] = [
    ("0999", 1, "Homicide"),
    ("1001", 1, "Kidnapping"),
    ("1150", 1, "Sexual Assault"),
    ("1299", 1, "Robbery"),
    ("1301", 1, "Assault"),
    ("1601", 1, "Threats"),
    ("1602", 1, "Threats"),
    ("2101", 1, "Extortion - Threat to Injure Person"),
    ("3601", 1, "Sex Offenses"),
    ("3802", 1, "Cruelty Toward Child, Wife"),
    ("3803", 1, "Cruelty Toward Child, Wife"),
    ("4801", 1, "Resisting an Officer"),
    ("5250", 1, "Weapon"),
    ("5401", 1, "Hit and Run"),
    ("2099", 2, "Arson"),
    ("2201", 2, "Burglary"),
    ("2350", 2, "Larceny"),
    ("2450", 2, "Stolen Vehicles"),
    ("2599", 2, "Forgery"),
    ("2601", 2, "Fraud"),
    ("2701", 2, "Embezzlement"),
    ("2899", 2, "Stolen Property"),
    ("2904", 2, "Damage Property w/Explosive"),
    ("5402", 2, "Traffic Offenses"),
    ("5899", 2, "Smuggling"),
    ("6300", 2, "Money Laundering"),
    ("7199", 2, "Property Crimes"),
    ("0150", 3, "Sovereignty"),
    ("0299", 3, "Military"),
    ("0301", 3, "Immigration"),
    ("2199", 3, "Extortion"),
    ("2901", 3, "Damage Property"),
    ("3801", 3, "Family Offenses"),
    ("3804", 3, "Family Offenses"),
    ("3999", 3, "Gambling"),
    ("4001", 3, "Commercialized Sex Offenses"),
    ("4101", 3, "Liquor"),
    ("4899", 3, "Obstructing the Police"),
    ("5101", 3, "Bribery"),
    ("5501", 3, "Health and Safety"),
    ("5699", 3, "Civil Rights"),
    ("5799", 3, "Invasion of Privacy"),
    ("5999", 3, "Elections Laws"),
    ("6201", 3, "Conservation"),
    ("7399", 3, "Public Order Crimes"),
]
EXPECTED_ROWS = [("moa", *row) for row in MOA_ROWS] + [
    ("strategic-plan", *row) for row in STRATEGIC_PLAN_ROWS
]


@pytest.mark.parametrize(("table", "code", "level", "category"), EXPECTED_ROWS)
def test_printed_row_classifies_its_code_to_its_level(
    table: str, code: str, level: int, category: str
) -> None:
    """A code inside each printed row gets that row's level and category."""
    result = load_table(table).classify(code)

    assert (result.level, result.category) == (level, category)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_every_data_row_owns_its_codes_unless_a_more_serious_row_overlaps(table: str) -> None:
    """Every code of every row gets that row's level, or a lower one only where rows overlap."""
    offense_table = load_table(table)
    for row in offense_table.rows:
        sentence_days = {None: None, "more-than-one-year": 400, "one-year-or-less": 30}[
            row.sentence_rule
        ]
        owned = 0
        for code_range in row.ranges:
            for number in range(code_range.start, code_range.end + 1):
                result = offense_table.classify(f"{number:04d}", sentence_days=sentence_days)
                assert result.level <= row.level, (table, row.name, number)
                owned += result.category == row.name
        assert owned > 0, (table, row.name)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_both_tables_keep_all_44_printed_rows(table: str) -> None:
    """No printed row is dropped, including the ones the two tables disagree on."""
    assert len(load_table(table).rows) == 44


def test_moa_2099_listed_under_arson_and_military_resolves_to_arson_level_2() -> None:
    """The more serious of two overlapping rows wins: Arson (Level 2) over Military (Level 3)."""
    result = load_table("moa").classify("2099")

    assert (result.level, result.category) == (2, "Arson")


def test_moa_military_keeps_0201_as_printed() -> None:
    """The MOA's Military row still owns 0201, the code no other row claims."""
    result = load_table("moa").classify("0201")

    assert (result.level, result.category) == (3, "Military")


def test_overlap_between_rows_of_the_same_level_goes_to_the_row_listed_first() -> None:
    """Between categories of equal level, the table's order decides."""
    table = OffenseTable(
        name="synthetic",
        version="test",
        title="same-level overlap",
        source="test",
        rows=(
            OffenseCategory(name="Third", level=3, ranges=(CodeRange(start=100, end=199),)),
            OffenseCategory(name="First", level=2, ranges=(CodeRange(start=100, end=199),)),
            OffenseCategory(name="Second", level=2, ranges=(CodeRange(start=150, end=150),)),
        ),
    )

    assert table.classify("0150").category == "First"


def test_moa_gap_2450_is_other_offenses_level_3() -> None:
    """A stolen-vehicle code the MOA leaves out falls to "Other offenses", Level 3."""
    result = load_table("moa").classify("2450")

    assert (result.level, result.category) == (3, "Other offenses")


def test_strategic_plan_2450_is_stolen_vehicles_level_2() -> None:
    """The Strategic Plan's Stolen Vehicles row covers 2401-2499, so 2450 is Level 2."""
    result = load_table("strategic-plan").classify("2450")

    assert (result.level, result.category) == (2, "Stolen Vehicles")


@pytest.mark.parametrize("table", TABLE_NAMES)
@pytest.mark.parametrize("code", ["0000", "0500", "9999"])
def test_code_in_no_range_is_other_offenses_level_3(table: str, code: str) -> None:
    """Unlisted codes are Level 3 "Other offenses" (MOA III.B.ii) in both tables."""
    result = load_table(table).classify(code)

    assert (result.level, result.category) == (3, "Other offenses")


def test_0150_is_national_security_level_1_in_moa() -> None:
    """The MOA puts 0101-0199 under National Security, Level 1."""
    result = load_table("moa").classify("0150")

    assert (result.level, result.category) == (1, "National Security")


def test_0150_is_sovereignty_level_3_in_strategic_plan() -> None:
    """The Strategic Plan puts 0101-0199 ("0101-199") under Sovereignty, Level 3."""
    result = load_table("strategic-plan").classify("0150")

    assert (result.level, result.category) == (3, "Sovereignty")


@pytest.mark.parametrize(
    ("code", "moa", "strategic_plan"),
    [
        ("0250", (3, "Other offenses"), (3, "Military")),
        ("1602", (1, "National Security"), (1, "Threats")),
        ("5250", (1, "National Security"), (1, "Weapon")),
        ("1350", (1, "Aggravated Assault"), (1, "Assault")),
    ],
)
def test_documented_differences_between_the_tables(
    code: str, moa: tuple[int, str], strategic_plan: tuple[int, str]
) -> None:
    """The sample codes in APPENDIX_A.md classify as documented in each table."""
    in_moa = load_table("moa").classify(code)
    in_plan = load_table("strategic-plan").classify(code)

    assert (in_moa.level, in_moa.category) == moa
    assert (in_plan.level, in_plan.category) == strategic_plan


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_drug_sentence_over_one_year_is_level_1(table: str) -> None:
    """A 400-day drug sentence is more than one year, so Level 1."""
    result = load_table(table).classify("3562", sentence_days=400)

    assert (result.level, result.category) == (1, "Drugs (sentence > 1 year)")


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_drug_sentence_of_exactly_one_year_is_level_2(table: str) -> None:
    """365 days is not more than one year, so the drug offense is Level 2."""
    result = load_table(table).classify("3562", sentence_days=365)

    assert (result.level, result.category) == (2, "Drugs (sentence <= 1 year)")


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_drug_sentence_of_366_days_is_level_1(table: str) -> None:
    """The boundary is sharp: one day over a year is Level 1."""
    assert load_table(table).classify("3501", sentence_days=366).level == 1


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_drug_charge_without_a_sentence_is_level_2_sentence_unknown(table: str) -> None:
    """An unadjudicated drug charge is never assumed to be the graver Level 1."""
    result = load_table(table).classify("3599", sentence_days=None)

    assert (result.level, result.category) == (2, "Drugs (sentence unknown)")


def test_negative_sentence_is_refused() -> None:
    """A sentence cannot be shorter than zero days."""
    with pytest.raises(ValueError, match="sentence_days must be zero or more, got -1"):
        load_table("moa").classify("3562", sentence_days=-1)


def test_sentence_does_not_change_a_non_drug_code() -> None:
    """The sentence only matters for the drug rows."""
    table = load_table("moa")

    assert table.classify("0901", sentence_days=10) == table.classify("0901")
    assert table.classify("2450", sentence_days=4000).level == 3


@pytest.mark.parametrize("code", ["", "12", "901", "12345", "ab12", " 0901", "0901\n", "٠٩٠١"])
def test_code_that_is_not_four_ascii_digits_is_refused(code: str) -> None:
    """Codes are never padded, trimmed or read from non-ASCII digits."""
    with pytest.raises(InvalidNcicCode, match="NCIC code must be four digits 0000-9999, got"):
        load_table("moa").classify(code)


def test_invalid_code_message_quotes_the_code() -> None:
    """The message shows exactly what was refused."""
    with pytest.raises(InvalidNcicCode) as refused:
        load_table("moa").classify("ab12")

    assert str(refused.value) == "NCIC code must be four digits 0000-9999, got 'ab12'"
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize("name", ["x", "", "MOA", "strategic_plan"])
def test_unknown_table_is_refused_with_the_choices(name: str) -> None:
    """Only the two Appendix A versions can be loaded, and the error lists them."""
    with pytest.raises(UnknownOffenseTable) as refused:
        load_table(name)

    expected = f"unknown Appendix A table {name!r}; choose one of: moa, strategic-plan"
    assert str(refused.value) == expected
    assert isinstance(refused.value, ValueError)


def test_default_table_is_the_moa_and_is_loadable() -> None:
    """The default names a real table."""
    assert DEFAULT_TABLE == "moa"
    assert load_table(DEFAULT_TABLE).version == "2009-moa"


def test_classification_as_dict_has_exactly_code_level_category_table() -> None:
    """as_dict is the plain shape other layers serialise."""
    result = load_table("strategic-plan").classify("0150")

    assert result == Classification(
        code="0150", level=3, category="Sovereignty", table="strategic-plan"
    )
    assert result.as_dict() == {
        "code": "0150",
        "level": 3,
        "category": "Sovereignty",
        "table": "strategic-plan",
    }


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_data_file_header_names_its_table_and_version(table: str) -> None:
    """Each data file declares which table and version it holds."""
    document = tomllib.loads(DATA_FILES[table].read_text(encoding="utf-8"))

    assert document["name"] == table
    assert document["version"] == f"2009-{table}"
    assert document["title"]
    assert document["source"]


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_data_file_ranges_are_four_digits_and_ordered(table: str) -> None:
    """Every code in the data is "NNNN" or "NNNN-NNNN" with start <= end."""
    document = tomllib.loads(DATA_FILES[table].read_text(encoding="utf-8"))

    for row in document["category"]:
        assert row["level"] in (1, 2, 3), row["name"]
        assert row["codes"], row["name"]
        for text in row["codes"]:
            match = CODE_OR_RANGE.fullmatch(text)
            assert match is not None, (row["name"], text)
            start, end = match.group(1), match.group(2) or match.group(1)
            assert int(start) <= int(end), (row["name"], text)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_drug_rows_use_the_dangerous_drugs_range_with_a_sentence_rule(table: str) -> None:
    """The assumed 3501-3599 range appears only on the two sentence-ruled drug rows."""
    rows = load_table(table).rows
    drug_rows = [row for row in rows if row.sentence_rule is not None]

    assert [(row.level, str(row.ranges[0])) for row in drug_rows] == [
        (1, "3501-3599"),
        (2, "3501-3599"),
    ]
    assert all(
        not any(number in code_range for code_range in row.ranges)
        for row in rows
        if row.sentence_rule is None
        for number in range(3501, 3600)
    )


def test_code_range_refuses_a_range_that_ends_before_it_starts() -> None:
    """A malformed range cannot be built."""
    with pytest.raises(ValueError, match="start <= end"):
        CodeRange.parse("0199-0101")
