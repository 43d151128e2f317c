"""The pre-commit hooks run the checks CI runs before the tests, as scripts/test.sh runs them,
with the project's own tools and nothing fetched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".pre-commit-config.yaml"


def _ci_checks() -> list[str]:
    """The commands scripts/test.sh runs before pytest, as written there."""
    lines = [line.strip() for line in (ROOT / "scripts" / "test.sh").read_text().splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/") and "pytest" not in line]


def _config() -> dict[str, Any]:
    """The pre-commit configuration."""
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return loaded


def _hooks() -> list[dict[str, Any]]:
    """Every hook of every repository in the configuration, in order."""
    return [hook for repo in _config()["repos"] for hook in repo["hooks"]]


def test_ci_checks_lint_formatting_types_and_contracts_before_the_tests() -> None:
    assert _ci_checks() == [
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/mypy",
        ".venv/bin/buf lint",
        ".venv/bin/buf format --diff --exit-code",
        ".venv/bin/buf breaking --against proto/baseline/scfed-1.0.0.binpb",
    ]


def test_the_hooks_run_exactly_the_checks_ci_runs_in_the_same_order() -> None:
    commands = [" ".join([hook["entry"], *hook.get("args", [])]) for hook in _hooks()]
    assert commands == _ci_checks()


def test_the_hooks_are_local_and_check_the_whole_tree_as_ci_does() -> None:
    assert [repo["repo"] for repo in _config()["repos"]] == ["local"]
    for hook in _hooks():
        assert hook["language"] == "system", hook["id"]
        assert hook["pass_filenames"] is False, hook["id"]


def test_pre_commit_accepts_the_configuration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
