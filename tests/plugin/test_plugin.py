"""The pytest plugin as a team meets it: loaded by its entry point in a pytest of its own (the
project's own runs say ``-p no:scfed``), running the example tests of examples/pytest_plugin
against an in-process federation and against one that already runs."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from services.federation import Agency
from services.runtime.tls import init_certificates
from tests.federation import DatabaseChoice, running_federation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pytest_plugin"
EXAMPLE = EXAMPLES / "test_bookings.py"
MANUAL_CLOCK_EXAMPLE = EXAMPLES / "test_manual_clock.py"
# A team's environment: nothing of this checkout's or this run's federation settings.
_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SCFED_", "PYTEST_"))}
TIMINGS = re.compile(r"scfed: federation ready in [0-9.]+s; reset\+seed [0-9.]+s per test")


def _team_project(tmp_path: Path, *files: Path) -> Path:
    """A folder holding only a team's test files (no conftest, no ini: plain pytest)."""
    project = tmp_path / "team"
    project.mkdir()
    for file in files:
        shutil.copy(file, project / file.name)
    return project


def _pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def test_the_entry_point_loads_the_plugin_without_importing_the_services() -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "scfed"]
    assert plugin.value == "scfed.services.testing.pytest_plugin"
    probe = (
        "import sys, scfed.services.testing.pytest_plugin as p; "
        "print(sorted(m for m in ('grpc', 'sqlalchemy', 'numpy', 'fastapi') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_ENV, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_pytest_help_documents_the_plugin_options(tmp_path: Path) -> None:
    shown = subprocess.run(
        _pytest_command("--help"), cwd=tmp_path, capture_output=True, text=True, env=_ENV
    )
    assert shown.returncode == 0, shown.stderr
    for option in (
        "--scfed-url",
        "--scfed-http",
        "--scfed-grpc",
        "--scfed-clock",
        "--scfed-seed",
        "--scfed-world-size",
        "--scfed-timeout",
    ):
        assert option in shown.stdout


def test_a_teams_tests_pass_on_the_in_process_federation(tmp_path: Path) -> None:
    project = _team_project(tmp_path, EXAMPLE, MANUAL_CLOCK_EXAMPLE)
    run = subprocess.run(
        _pytest_command("-rA"), cwd=project, capture_output=True, text=True, env=_ENV, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed, 1 skipped" in run.stdout
    assert TIMINGS.search(run.stdout), run.stdout


def test_a_team_steps_the_agency_clocks_by_hand_with_scfed_clock_manual(tmp_path: Path) -> None:
    project = _team_project(tmp_path, MANUAL_CLOCK_EXAMPLE)
    run = subprocess.run(
        _pytest_command("--scfed-clock", "manual"),
        cwd=project,
        capture_output=True,
        text=True,
        env=_ENV,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


async def test_a_teams_tests_pass_against_a_federation_already_running(tmp_path: Path) -> None:
    project = _team_project(tmp_path, EXAMPLE)
    # A federation as `scfed up` runs one: mutual TLS and LEA keys required; the team's
    # environment names only where the operator's certificate is.
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    tls: dict[str, Any] = {agency: {"tls": "on", "tls_dir": certs} for agency in Agency}
    tls[Agency.SIB]["lea_credentials"] = "required"
    async with running_federation(DatabaseChoice("sqlite", tmp_path / "fed"), **tls) as fed:
        options = ["--scfed-url", fed.sib_url]
        for agency in Agency:
            options += ["--scfed-http", f"{agency}={fed.hosts[agency].http_url}"]
            options += ["--scfed-grpc", f"{agency}={fed.hosts[agency].grpc_address}"]
        process = await asyncio.create_subprocess_exec(
            *_pytest_command(*options),
            cwd=project,
            env={**_ENV, "SCFED_TLS_DIR": str(certs)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "4 passed" in text


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--scfed-grpc", "nowhere=1"], "NAME=HOST:PORT"),
        (["--scfed-http", "sib=127.0.0.1:8081"], "NAME=http://host:port"),
        (["--scfed-url", "127.0.0.1:8081"], "--scfed-url: expected http://host:port"),
        (["--scfed-clock", "fast"], "--scfed-clock: bad clock spec"),
    ],
)
def test_a_bad_scfed_option_stops_pytest_with_a_usage_error(
    tmp_path: Path, options: list[str], reason: str
) -> None:
    project = _team_project(tmp_path, EXAMPLE)
    run = subprocess.run(
        _pytest_command(*options), cwd=project, capture_output=True, text=True, env=_ENV
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert reason in run.stderr
