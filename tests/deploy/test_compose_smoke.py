"""For real: a Docker engine of our own, the image built from the Dockerfile on a base made with
debootstrap, the federation brought up from compose.yaml + compose.hostnet.yaml (host network,
loopback only), 50 bookings driven through the SIB's agency edge with `scfed demo --sib-url`,
every one answered, and one traced with `scfed trace --sib-url`.

The agencies use the host's PostgreSQL (127.0.0.1:5432, one database `scfed_smoke_<service>`
each, dropped and made again) instead of compose's postgres container: no registry is reachable
here for the postgres image, and the host's server is already up. Skipped only where no engine
can be started at all (not root, or apt cannot install docker.io).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.federation import Agency
from tests.deploy import engine as engines
from tests.deploy.compose import ComposeProject

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432"
BOOKINGS = 50
# Compose names services as DNS does (cjis-iafis); the registry as Python does (cjis_iafis).
SERVICE_NAMES = {agency.replace("_", "-"): agency for agency in Agency}


async def _fresh_databases() -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        for name in SERVICE_NAMES.values():
            await conn.execute(f'DROP DATABASE IF EXISTS "scfed_smoke_{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "scfed_smoke_{name}"')
    finally:
        await conn.close()


async def _drop_databases() -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        for name in SERVICE_NAMES.values():
            await conn.execute(f'DROP DATABASE IF EXISTS "scfed_smoke_{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def engine() -> Iterator[engines.Engine]:
    """A dockerd of our own, stopped at the end."""
    started = time.monotonic()
    try:
        engine = engines.start_engine()
    except engines.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine can be started here: {exc}")
    engine.timings["engine_start_s"] = time.monotonic() - started
    try:
        yield engine
    finally:
        engine.stop()


def _scfed(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_compose_federation_answers_every_booking_driven_through_the_sib_edge(
    engine: engines.Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    total = time.monotonic()
    timings = dict(engine.timings)
    timings["base_image_s"] = engines.ensure_base_image(engine)
    step = time.monotonic()
    wheelhouse = engines.build_wheelhouse()
    timings["wheelhouse_s"] = time.monotonic() - step
    timings["build_s"] = engines.build_image(engine, wheelhouse)

    asyncio.run(_fresh_databases())
    project = ComposeProject(
        engine.client,
        external=frozenset({"postgres"}),
        env_overrides={
            service: {
                "SCFED_DATABASE_URL": (
                    f"postgresql+asyncpg://postgres@127.0.0.1:5432/scfed_smoke_{name}"
                ),
            }
            for service, name in SERVICE_NAMES.items()
        },
    )
    try:
        up = time.monotonic()
        project.up(timeout_s=240)
        timings["start_to_healthy_s"] = time.monotonic() - up
        # The gRPC edges take only the federation's certificates: the operator's, as the
        # README has one copy it (`docker compose cp certs:/authority/...`).
        operator = tmp_path / "certs"
        project.copy_out(
            "certs",
            ["/authority/ca.pem", "/authority/operator.pem", "/authority/operator.key"],
            operator,
        )
        tls_env = {"SCFED_TLS": "on", "SCFED_TLS_DIR": str(operator)}

        urls: list[str] = []
        addrs: list[str] = []
        for name in Agency:
            addrs += ["--addr", f"{name}=127.0.0.1:{name.profile.grpc_port}"]
            if name != Agency.SIB:
                urls += ["--url", f"{name}=http://127.0.0.1:{name.profile.http_port}"]
        driven = time.monotonic()
        demo = _scfed(
            "demo",
            "--sib-url",
            "http://127.0.0.1:8081",
            *urls,
            *addrs,
            "--bookings",
            str(BOOKINGS),
            "--seed",
            "11",
            "--timeout",
            "240",
            "--json",
            env=tls_env,
        )
        timings["bookings_s"] = time.monotonic() - driven
        assert demo.returncode == 0, demo.stderr[-3000:] + json.dumps(project.logs())[-3000:]
        result = json.loads(demo.stdout)
        assert result["bookings"] == BOOKINGS
        assert result["answered"] + result["refused"] == BOOKINGS
        assert result["unanswered"] == 0
        assert result["problems"] == []
        assert set(result["counted_services"]) == set(SERVICE_NAMES.values())
        assert result["ident_matches"] > 0

        trace = _scfed(
            "trace",
            result["sample_tcn"],
            "--sib-url",
            "http://127.0.0.1:8081",
            *urls,
            "--json",
            env=tls_env,
        )
        assert trace.returncode == 0, trace.stderr[-2000:]
        entries = json.loads(trace.stdout)
        assert {Agency.SIB, Agency.CJIS_IAFIS, Agency.IDENT} <= {e["service"] for e in entries}
        assert ("received", "SRE") in {(e["direction"], e["tot"]) for e in entries}
        trace_line = f"trace {result['sample_tcn']}: " + " ".join(
            f"{e['service']}:{e['direction']}:{e['tot']}" for e in entries
        )
    finally:
        project.down()
        asyncio.run(_drop_databases())
    timings["total_s"] = time.monotonic() - total + timings.get("engine_start_s", 0.0)
    with capsys.disabled():
        print(
            "\nsmoke timings (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
            + f"; storage driver {engine.storage_driver}; {BOOKINGS} bookings answered"
            + f" ({result['answered']} answered, {result['refused']} refused)\n{trace_line}"
        )
