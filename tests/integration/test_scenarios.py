"""Scenario files played on federations of their own: the shipped ones stay true, and a wrong
expectation is reported as exactly that one expectation unmet."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from services.cli.scenario import EXIT_MET, EXIT_UNMET, run_files
from services.scenarios.model import load_scenario
from services.scenarios.runner import run_spec

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(p for p in SCENARIOS.iterdir() if p.suffix in (".toml", ".yaml", ".yml"))


def test_the_shipped_scenarios_cover_the_moa_paths() -> None:
    assert len(SHIPPED) >= 6
    for path in SHIPPED:
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), f"{path.name} starts with a comment saying what it exercises"
        assert "MOA" in path.read_text().split("\nname")[0], f"{path.name} cites the MOA"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
async def test_every_shipped_scenario_is_met(path: Path) -> None:
    result = await run_spec(load_scenario(path), source=str(path))
    assert result.results, "a scenario checks something"
    assert result.met, "\n".join(r.line() for r in result.results if not r.met)


def test_a_wrong_expectation_is_the_one_reported_unmet_and_the_run_exits_1(
    tmp_path: Path,
) -> None:
    text = (SCENARIOS / "level1-match-detainer.toml").read_text()
    # The detainer rests on the prior Level 1 conviction, not on the current (Level 2) charge.
    wrong = text.replace('detainer_basis = "PRIOR_LEVEL_1"', 'detainer_basis = "LEVEL_1"')
    assert wrong != text
    path = tmp_path / "wrong.toml"
    path.write_text(wrong)

    out = io.StringIO()
    assert run_files([path], as_json=False, out=out, err=io.StringIO()) == EXIT_UNMET
    unmet = [line.strip() for line in out.getvalue().splitlines() if "UNMET" in line]
    assert unmet == ["UNMET  step 1 booking arrest: detainer_basis = LEVEL_1; saw PRIOR_LEVEL_1"], (
        out.getvalue()
    )
    assert "12/13 expectations met" in out.getvalue()

    out = io.StringIO()
    assert run_files([path], as_json=True, out=out, err=io.StringIO()) == EXIT_UNMET
    report = json.loads(out.getvalue())
    assert report["met"] is False
    failed = [r for r in report["scenarios"][0]["results"] if not r["met"]]
    assert [(r["expectation"], r["expected"], r["seen"]) for r in failed] == [
        ("detainer_basis", "LEVEL_1", "PRIOR_LEVEL_1")
    ]


def test_a_met_scenario_exits_0_with_one_line_per_expectation(tmp_path: Path) -> None:
    out = io.StringIO()
    path = SCENARIOS / "no-ident-match.toml"
    assert run_files([path], as_json=False, out=out, err=io.StringIO()) == EXIT_MET
    lines = [line for line in out.getvalue().splitlines() if line.strip().startswith("met ")]
    assert len(lines) == len(load_scenario(path).steps[0].expect.given())  # type: ignore[union-attr]


REFUSING_RULE = 'fault = "ice_field"\naction = "status"\ncode = "PERMISSION_DENIED"\n'


@pytest.mark.parametrize("form", ["step", "faults"])
def test_a_fault_rule_in_a_file_acts_on_the_flow(tmp_path: Path, form: str) -> None:
    text = (SCENARIOS / "level1-match-detainer.toml").read_text()
    # The field office refuses LESC's IAR copy for good: LESC dead-letters it, no I-247.
    if form == "step":
        refusing = text.replace(
            "[[steps]]\nbook", f"[[steps]]\n{REFUSING_RULE}\n[[steps]]\nbook", 1
        )
    else:
        refusing = text.replace("[people.ewi]", f"[[faults]]\n{REFUSING_RULE}\n[people.ewi]", 1)
    assert refusing != text
    path = tmp_path / "refusing.toml"
    path.write_text(refusing)
    out = io.StringIO()
    assert run_files([path], as_json=True, out=out, err=io.StringIO()) == EXIT_UNMET
    results = json.loads(out.getvalue())["scenarios"][0]["results"]
    unmet = {r["expectation"] for r in results if not r["met"]}
    assert unmet == {"detainer", "detainer_basis", "detainer_within"}, results
