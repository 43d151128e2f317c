"""Schemathesis against each service's HTTP edge: generated and mutated requests from the
published OpenAPI document, bounded by example count. It fails on any 5xx and on any answer the
document does not declare (status, content type, headers, body schema, Allow of a 405)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from services.federation import Agency
from tests.federation import DatabaseChoice, make_host

# Per operation and phase; the SIB's 22 operations dominate the run's time.
MAX_EXAMPLES = 8
SEED = 14
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "allow_header_conformance",
        # Not positive_data_acceptance: a schema-valid request is refused for rules no schema
        # holds (an ORI that is not registered, a template of the wrong dimension, a clock spec
        # another kind of clock, a release time outside 1970-2199), and that is right: 422
        # naming the rule.
    ]
)


# The fault routes get a run of their own: a generated rule may slow every database
# transaction for minutes, which would stall the rest of a run (the routes themselves never
# touch the database). They are the same on every service; the SIB's stand for all.
RUNS = [(agency, "--exclude-tag=faults") for agency in Agency] + [
    (Agency.SIB, "--include-tag=faults")
]


@pytest.mark.parametrize(
    ("service", "operations"), RUNS, ids=[f"{a}{'-faults' * ('include' in o)}" for a, o in RUNS]
)
async def test_generated_requests_get_no_5xx_and_only_documented_answers(
    tmp_path: Path, service: Agency, operations: str
) -> None:
    # SQLite only, to keep the run within two minutes: what PostgreSQL refuses and SQLite
    # takes (NUL, 64-bit integers in 32-bit columns) test_http_edge.py proves on both.
    host = make_host(service, DatabaseChoice(kind="sqlite", tmp=tmp_path))
    await host.start()
    try:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{host.http_url}/openapi.json",
            f"--checks={CHECKS}",
            f"--max-examples={MAX_EXAMPLES}",
            f"--seed={SEED}",
            "--phases=examples,coverage,fuzzing",
            "--request-timeout=10",
            # One worker: hypothesis parses lambdas' source with ast.parse, which raises
            # "AST constructor recursion depth mismatch" in concurrent threads on CPython 3.11.
            "--workers=1",
            operations,
            f"--report-dir={tmp_path / 'schemathesis'}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
        took = time.monotonic() - started
    finally:
        await host.stop()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{service} ({took:.0f} s):\n{text[-6000:]}"
