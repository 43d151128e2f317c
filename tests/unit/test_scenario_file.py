"""Scenario files: what a valid one means, and the clear message a malformed one gets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.scenario import EXIT_MALFORMED, run_files
from services.scenarios.model import (
    AdvanceStep,
    BookStep,
    ScenarioFileError,
    load_scenario,
    parse_text,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

GOOD = """\
[people.a]
ident = { status = "VISA_OVERSTAY" }

[[steps]]
book = "one"
person = "a"
agency = "CA0190000"
charges = ["2399"]
[steps.expect]
transaction = "CAR"
detainer = true

[[steps]]
advance = "48h"
"""

GOOD_YAML = """\
people:
  a:
    ident: {status: VISA_OVERSTAY}
steps:
  - book: one
    person: a
    agency: CA0190000
    charges: ["2399"]
    expect: {transaction: CAR, detainer: true}
  - advance: 48h
"""


def test_a_toml_and_a_yaml_file_describe_the_same_scenario() -> None:
    toml, yaml = parse_text(GOOD, suffix=".toml"), parse_text(GOOD_YAML, suffix=".yaml")
    assert toml == yaml
    book, advance = toml.steps
    assert isinstance(book, BookStep) and isinstance(advance, AdvanceStep)
    assert book.expect.given() == {"transaction": "CAR", "detainer": True}


def test_every_shipped_scenario_is_well_formed() -> None:
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert load_scenario(path).steps


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("detainer = true", "detainr = true"), "line 11: steps.0.book.expect.detainr"),
        (GOOD.replace('person = "a"', 'person = "b"'), "steps.0.person: no person 'b'"),
        (GOOD.replace('"CA0190000"', '"CA0199999"'), "steps.0.agency: no agency with ORI"),
        (GOOD.replace('"48h"', '"two days"'), "line 14: steps.1.advance.advance: bad duration"),
        (GOOD.replace('"2399"', '"23"'), "line 8: steps.0.book.charges"),
        (GOOD.replace("VISA_OVERSTAY", "TOURIST"), "line 2: people.a.ident.status"),
        (GOOD.replace("detainer = true", 'detainer = "maybe"'), "steps.0.book.expect.detainer"),
        (GOOD.replace('advance = "48h"', 'check = "one"'), "steps.1.check.expect: Field required"),
        (GOOD.replace('advance = "48h"', 'release = "two"'), "steps.1.release: no earlier"),
        (GOOD.replace('advance = "48h"', 'advance = "1h"\nmoa = "ACTIVE"'), "exactly one of"),
        (GOOD + "colour = 'red'\n", "colour"),
        ("steps = []\n", "steps: List should have at least 1 item"),
        (GOOD.replace("[steps.expect]", "[steps.expect"), "not valid TOML"),
        (
            GOOD.replace('advance = "48h"', 'fault = "lesc"\naction = "partition"'),
            "line 13: steps.1.fault: a partition rule needs the peer",
        ),
        (
            GOOD.replace('advance = "48h"', 'fault = "fbi"\naction = "drop"'),
            "steps.1.fault.fault",
        ),
        (GOOD.replace('advance = "48h"', 'clear_faults = "nobody"'), "steps.1.clear_faults"),
    ],
    ids=[
        "unknown expectation",
        "unknown person",
        "unknown agency",
        "bad duration",
        "bad NCIC code",
        "unknown immigration status",
        "wrong type",
        "check without expect",
        "release of an unknown booking",
        "two step kinds",
        "unknown key",
        "no steps",
        "TOML syntax",
        "fault rule without its peer",
        "fault on an unknown agency",
        "clear faults of an unknown agency",
    ],
)
def test_a_malformed_file_is_refused_naming_the_field(text: str, where: str) -> None:
    with pytest.raises(ScenarioFileError) as caught:
        parse_text(text, suffix=".toml", source="s.toml")
    assert str(caught.value).startswith("s.toml: ")
    assert where in str(caught.value)


def test_a_malformed_file_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace('person = "a"', 'person = "nobody"'))
    err, out = io.StringIO(), io.StringIO()
    assert run_files([good, bad], as_json=False, out=out, err=err) == EXIT_MALFORMED
    assert out.getvalue() == ""
    assert f"malformed scenario {bad}" in err.getvalue()
    assert "steps.0.person: no person 'nobody' in [people]" in err.getvalue()
    assert str(good) not in err.getvalue()


def test_the_command_exits_2_for_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(GOOD.replace("detainer = true", "detainr = true"))
    result = CliRunner().invoke(app, ["scenario", "run", str(path)])
    assert result.exit_code == 2
    assert "unknown key 'detainr'" in result.stderr


@pytest.mark.parametrize(("name", "problem"), [("s.json", "ends in .toml"), ("s.toml", "cannot")])
def test_a_file_that_cannot_be_read_as_a_scenario_is_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text("{}")
    with pytest.raises(ScenarioFileError, match=problem):
        load_scenario(path)
