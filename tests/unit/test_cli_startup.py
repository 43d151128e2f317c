"""The command line starts without the federation's heavy libraries, and can measure that."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.cli.startup_bench import render_startup, run_startup_bench

HEAVY = ("numpy", "hnswlib", "grpc", "sqlalchemy", "fastapi")

# Runs `code` in a fresh interpreter, then prints which of HEAVY it loaded.
PROBE = """
import contextlib, io, json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _heavy_modules_loaded(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _heavy_modules_loaded("import services.cli.main") == []


@pytest.mark.parametrize("args", [["--help"], ["classify", "1313", "--json"], ["bench", "--help"]])
def test_help_and_classify_load_no_heavy_library(args: list[str]) -> None:
    code = (
        "from services.cli.main import app\n"
        f"sys.argv = ['scfed', *{args!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    app()"
    )
    assert _heavy_modules_loaded(code) == []


def test_the_startup_bench_reports_cpu_and_wall_per_command() -> None:
    report = run_startup_bench(["--help", "classify 1313"], runs=2)
    assert report["runs"] == 2
    assert [row["command"] for row in report["commands"]] == [
        "scfed --help",
        "scfed classify 1313",
    ]
    for row in report["commands"]:
        for figure in (row["cpu_s"], row["wall_s"]):
            assert 0 < figure["median"] <= figure["max"]
    assert "scfed classify 1313" in render_startup(report)


def test_the_startup_bench_names_a_command_that_fails() -> None:
    with pytest.raises(RuntimeError, match="scfed classify 12 exited with 2"):
        run_startup_bench(["classify 12"], runs=1)
