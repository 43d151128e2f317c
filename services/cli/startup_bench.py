"""`scfed bench startup`: what a command costs before it does anything, in fresh interpreters.

Each command line runs `runs` times as ``python -m <package>.cli.main <args>``, one process at
a time, so the interpreter's start, every import the command makes and its own work are all
counted. CPU is the child's user and system time (from the resource usage of waited-for
children), wall is the time from spawn to exit.
"""

from __future__ import annotations

import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..federation import PACKAGE

DEFAULT_COMMANDS: tuple[str, ...] = ("--help", "classify 1313 --json")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(args: Sequence[str]) -> tuple[float, float]:
    """CPU and wall seconds of one run of `scfed <args>` in a fresh interpreter.

    Raises RuntimeError with the command's stderr when it does not exit with 0.
    """
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.cli.main", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(
            f"scfed {shlex.join(args)} exited with {done.returncode}: "
            f"{done.stderr.decode(errors='replace')[-500:]}"
        )
    return cpu, wall


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def run_startup_bench(commands: Sequence[str], *, runs: int) -> dict[str, Any]:
    """Each command line `runs` times: CPU and wall seconds, median and max."""
    results = []
    for command in commands:
        args = shlex.split(command)
        cpu, wall = [], []
        for _ in range(runs):
            c, w = time_command(args)
            cpu.append(c)
            wall.append(w)
        results.append(
            {"command": f"scfed {command}", "cpu_s": _summary(cpu), "wall_s": _summary(wall)}
        )
    return {"runs": runs, "python": sys.version.split()[0], "commands": results}


def render_startup(report: dict[str, Any]) -> str:
    """The report as a table of text, one command a line."""
    lines = [
        f"startup over {report['runs']} runs each (Python {report['python']}), seconds",
        f"{'command':<32} {'CPU median':>10} {'CPU max':>8} {'wall median':>11} {'wall max':>8}",
    ]
    for row in report["commands"]:
        cpu, wall = row["cpu_s"], row["wall_s"]
        lines.append(
            f"{row['command']:<32} {cpu['median']:>10.3f} {cpu['max']:>8.3f} "
            f"{wall['median']:>11.3f} {wall['max']:>8.3f}"
        )
    return "\n".join(lines)
