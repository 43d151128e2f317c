"""The federation as a user drives it: separate processes, the `scfed` command, real ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.federation import Agency
from services.runtime.ports import free_port
from services.runtime.tls import (
    OPERATOR,
    ChannelFactory,
    SecureChannels,
    init_certificates,
    insecure_channels,
)
from services.world.world import booking_payload, build_world
from tests.federation import POSTGRES_URL
from tests.support import postgres_or_skip

pytestmark = pytest.mark.e2e

SCFED = [sys.executable, "-m", "services.cli.main"]
ROOT = Path(__file__).resolve().parents[2]
COUNTS = (
    "bookings",
    "car",
    "cpi",
    "sre",
    "ident_searches",
    "ident_matches",
    "no_match_idr",
    "iaq",
    "iar",
    "joint_idr_iar",
    "relayed_to_lea",
    "not_relayed",
    "detainers",
    "errors",
    "unanswered",
)


def _run(
    args: list[str], *, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCFED, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _demo(*extra: str) -> dict[str, Any]:
    # The demo's own timeout is below the subprocess's, so a stall reports where it stands.
    result = _run(["demo", "--bookings", "40", "--seed", "7", "--json", "--timeout", "150", *extra])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object on stdout"
    return dict(json.loads(lines[0]))


def test_demo_answers_every_booking_and_agrees_on_sqlite_and_postgres(tmp_path: Path) -> None:
    sqlite = _demo("--data-dir", str(tmp_path / "demo"))
    assert sqlite["database"] == "sqlite"
    assert sqlite["unanswered"] == 0 and sqlite["problems"] == [] and sqlite["errors"] == 0, sqlite
    assert sqlite["bookings"] == 40 and sqlite["sre"] == 40
    assert set(sqlite["latency_ms"]) == {"p50", "p99"}
    assert set(sqlite["detainers"]) == {"level_1", "level_2", "level_3"}

    # The cases ran to their end, and the Strategic Plan's measures all have a value.
    # One release notice per case: a detainer lodged again for a later booking (one person, one
    # case) is one more I-247 in the LEAs' inboxes, not one more case.
    assert sqlite["releases"] == sqlite["cases"]["cases"] > 0
    assert sqlite["releases"] <= sum(sqlite["detainers"].values())
    assert sqlite["cases"]["open"] == 0 and sqlite["cases"]["by_state"].get("removed", 0) > 0
    printed = {m["key"]: m["value"] for m in sqlite["measures"]}
    report = _run(["report", "--data-dir", str(tmp_path / "demo"), "--json"])
    assert report.returncode == 0, report.stderr
    measures = json.loads(report.stdout)["measures"]
    assert {m["key"]: m["value"] for m in measures} == printed
    assert [m["key"] for m in measures if m["value"] is None] == []
    goals = {"1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "3.3"}
    assert {m["goal"] for m in measures} == goals
    assert json.loads(report.stdout)["programs"], "Goal 3.3 reviewed no program"
    # The world is under the national rollout plan: coverage by phase, each target met, every
    # booking in one phase's row; the report reads the same rows from the SIB's records.
    phases = [row for row in sqlite["rollout"] if row["phase"]]
    assert [row["phase"] for row in phases] == [1, 2, 3]
    assert all(row["target_met"] for row in phases)
    assert sum(row["bookings"] for row in sqlite["rollout"]) == 40
    assert json.loads(report.stdout)["rollout"] == sqlite["rollout"]

    trace = _run(["trace", sqlite["sample_tcn"], "--data-dir", str(tmp_path / "demo"), "--json"])
    assert trace.returncode == 0, trace.stderr
    entries = json.loads(trace.stdout)
    assert entries[0]["tot"] == "BOOKING" and {"sib", "cjis_iafis"} <= {
        e["service"] for e in entries
    }

    asyncio.run(postgres_or_skip())  # the PostgreSQL half, where PostgreSQL answers
    postgres = _demo("--database-url", POSTGRES_URL)
    assert postgres["database"] == "postgresql" and postgres["problems"] == []
    assert {k: postgres[k] for k in COUNTS} == {k: sqlite[k] for k in COUNTS}


def test_demo_refuses_a_bad_database_url() -> None:
    result = _run(["demo", "--bookings", "1", "--database-url", "mysql://x/y"])
    assert result.returncode != 0
    assert "database_url must be" in result.stderr


def test_classify_prints_the_documented_json() -> None:
    result = _run(["classify", "3562", "--sentence-days", "400", "--table", "moa", "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "code": "3562",
        "level": 1,
        "category": "Drugs (sentence > 1 year)",
        "table": "moa",
    }
    refused = _run(["classify", "35A2"])
    assert refused.returncode == 2 and "four digits" in refused.stderr


def test_bench_sweep_prints_one_json_object() -> None:
    sizes = ["--gallery", "300", "--probes", "10", "--m", "8", "--rescore", "8"]
    result = _run(["bench", "sweep", *sizes, "--ef", "16", "--ef", "40", "--json"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [(r["m"], r["ef"]) for r in report["rows"]] == [(8, 16), (8, 40)]
    assert report["gallery"] == 300 and report["mated_probes"] == 10
    refused = _run(["bench", "sweep", "--m", "1"])
    assert refused.returncode == 2 and "--m" in refused.stderr


def _service_env(tmp_path: Path, name: str, grpc_port: int, http_port: int) -> dict[str, str]:
    prefix = f"SCFED_{name.upper()}_"
    return {
        **os.environ,
        "SCFED_DATA_DIR": str(tmp_path),
        f"{prefix}GRPC_PORT": str(grpc_port),
        f"{prefix}HTTP_PORT": str(http_port),
    }


def _wait_ready(url: str, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited at start"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout}s")


async def _health_and_reflection(address: str, certs: Path) -> tuple[int, list[str]]:
    async with SecureChannels.of(certs, OPERATOR)(Agency.IDENT, address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="scfed.ident.v1.Ident")
        )
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: list[str] = []
        async for reply in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names = [s.name for s in reply.list_services_response.service]
        return health.status, names


def test_a_service_alone_with_no_certificates_exits_saying_how_to_make_them(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.ident"],
        cwd=ROOT,
        env=_service_env(tmp_path, "ident", free_port(), free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"run `scfed certs init --dir {tmp_path / 'certs'}`" in result.stderr
    assert "SCFED_TLS=off" in result.stderr


def test_a_service_runs_alone_and_stops_gracefully(tmp_path: Path) -> None:
    init_certificates(tmp_path / "certs")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ident"],
        cwd=ROOT,
        env=_service_env(tmp_path, "ident", grpc_port, http_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{http_port}", proc)
        address = f"127.0.0.1:{grpc_port}"
        status, services = asyncio.run(_health_and_reflection(address, tmp_path / "certs"))
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert {"scfed.ident.v1.Ident", "scfed.common.v1.Journal", "grpc.health.v1.Health"} <= set(
            services
        )
        assert (tmp_path / "ident.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0
    assert proc.stderr is not None and b"ident stopped" in proc.stderr.read()


def test_bad_configuration_exits_with_the_reason(tmp_path: Path) -> None:
    env = {**_service_env(tmp_path, "lesc", 0, 0), "SCFED_LESC_OFFENSE_TABLE": "bogus"}
    result = subprocess.run(
        [sys.executable, "-m", "services.lesc"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "offense_table" in result.stderr and "moa" in result.stderr


def _free_offset() -> int:
    """A port offset whose ten ports (50051.. and 8081.., shifted) are all free right now."""
    for offset in range(300 + os.getpid() % 400, 1000):
        ports = [p + offset for p in (*range(50051, 50056), *range(8081, 8086))]
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise AssertionError("no free port offset")


def test_up_runs_the_federation_until_interrupted(tmp_path: Path) -> None:
    offset = _free_offset()
    proc = subprocess.Popen(
        [
            *SCFED,
            "up",
            "--data-dir",
            str(tmp_path),
            "--port-offset",
            str(offset),
            "--seed",
            "3",
            "--world-size",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for http in range(8081, 8086):
            _wait_ready(f"http://127.0.0.1:{http + offset}", proc, timeout=60)
        deadline = time.monotonic() + 60
        states: Any = []
        while time.monotonic() < deadline and len(states) < 4:
            r = httpx.get(f"http://127.0.0.1:{8081 + offset}/v1/states")
            assert r.status_code == 200, r.text
            states = r.json()
            time.sleep(0.2)
        assert {s["code"] for s in states} == {"TX", "CA", "AZ", "NM"}
        # By default: mutual TLS with certificates made in the data dir, and LEA keys.
        assert (tmp_path / "certs" / "ca.pem").exists()
        sib = f"127.0.0.1:{50051 + offset}"
        with pytest.raises(grpc.aio.AioRpcError) as plaintext:
            asyncio.run(_health(insecure_channels, sib))
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
        certs = tmp_path / "certs"
        assert asyncio.run(_health(SecureChannels.of(certs, OPERATOR), sib)) == 1
        # Saved once the whole world is seeded.
        while time.monotonic() < deadline and not (tmp_path / "lea-keys.json").exists():
            time.sleep(0.2)
        keys = json.loads((tmp_path / "lea-keys.json").read_text())
        assert (tmp_path / "lea-keys.json").stat().st_mode & 0o077 == 0
        world = build_world(3, 5)
        booking = world.bookings[0]
        payload = booking_payload(world, booking)
        edge = f"http://127.0.0.1:{8081 + offset}"
        assert httpx.post(f"{edge}/v1/bookings", json=payload).status_code == 401
        headers = {"Authorization": f"Bearer {keys[booking.ori]}"}
        accepted = httpx.post(f"{edge}/v1/bookings", json=payload, headers=headers)
        assert accepted.status_code == 202, accepted.text
        # The HTTP operator routes want the operator's token, which the CLI finds in the data
        # dir as the services do.
        assert httpx.post(f"{edge}/v1/admin/reset").status_code == 401
        urls = [f"--url={a}=http://127.0.0.1:{a.profile.http_port + offset}" for a in Agency]
        env = {**os.environ, "SCFED_DATA_DIR": str(tmp_path)}
        reset = subprocess.run(
            [*SCFED, "reset", *urls, "--json"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert reset.returncode == 0, reset.stderr[-2000:]
        assert json.loads(reset.stdout)["done"][Agency.SIB]["deleted"]["bookings"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "federation stopped" in out
    assert str(tmp_path / "lea-keys.json") in out


async def _health(channels: ChannelFactory, address: str) -> int:
    async with channels(Agency.SIB, address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return int(reply.status)
