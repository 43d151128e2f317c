"""`scfed scenario run`: play scenario files on federations of their own and report each
expectation met or not.

Exit codes: 0 when every expectation of every file is met, 1 when one is not (or a step could
not be carried out), 2 when a file is malformed (nothing is run then).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..scenarios.model import ScenarioFileError, ScenarioSpec, load_scenario
from ..scenarios.runner import ScenarioResult, run_spec

EXIT_MET = 0
EXIT_UNMET = 1
EXIT_MALFORMED = 2


def load_all(paths: Sequence[Path]) -> tuple[list[tuple[Path, ScenarioSpec]], list[str]]:
    """Every file validated: the scenarios, and the problems of those that are malformed."""
    specs: list[tuple[Path, ScenarioSpec]] = []
    problems: list[str] = []
    for path in paths:
        try:
            specs.append((path, load_scenario(path)))
        except ScenarioFileError as exc:
            problems.append(str(exc))
    return specs, problems


async def _run_all(specs: list[tuple[Path, ScenarioSpec]]) -> list[tuple[ScenarioResult, str]]:
    results: list[tuple[ScenarioResult, str]] = []
    for path, spec in specs:
        try:
            results.append((await run_spec(spec, source=str(path)), ""))
        except RuntimeError as exc:
            results.append((ScenarioResult(spec.name or path.stem, str(path)), str(exc)))
    return results


def run_files(
    paths: Sequence[Path],
    *,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Runs the scenario files in order and reports on `out` (problems on `err`; by default
    stdout and stderr); returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    specs, problems = load_all(paths)
    if problems:
        for problem in problems:
            err.write(f"malformed scenario {problem}\n")
        return EXIT_MALFORMED
    # Services stopped at the end of a run may log a cancelled database reset; the report is
    # what a scenario run prints.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    results = asyncio.run(_run_all(specs))
    ok = all(r.met and not failed for r, failed in results)
    if as_json:
        report: list[dict[str, Any]] = []
        for r, failed in results:
            entry = r.as_json()
            entry["error"] = failed
            entry["met"] = entry["met"] and not failed
            report.append(entry)
        out.write(json.dumps({"met": ok, "scenarios": report}) + "\n")
        return EXIT_MET if ok else EXIT_UNMET
    for r, failed in results:
        out.write(f"scenario {r.name} ({r.source})\n")
        for line in r.results:
            out.write(f"  {line.line()}\n")
        if failed:
            out.write(f"  ERROR  {failed}\n")
        unmet = sum(not x.met for x in r.results)
        verdict = "met" if r.met and not failed else "NOT MET"
        out.write(
            f"  {verdict}: {len(r.results) - unmet}/{len(r.results)} expectations met "
            f"in {r.seconds:.2f}s\n"
        )
    return EXIT_MET if ok else EXIT_UNMET
