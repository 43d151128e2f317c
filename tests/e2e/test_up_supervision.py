"""`scfed up` supervises its services: one killed with SIGKILL is restarted, with a line saying
which and why, while the rest keep running, and bookings go through again; one that keeps
failing is given up on, and the others keep running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from services.cli.launcher import LocalFederation, RestartPolicy
from services.federation import Agency
from tests.e2e.test_cli import ROOT, SCFED, _free_offset

pytestmark = pytest.mark.e2e


def _ready(url: str, up: subprocess.Popen[str], said: Path, timeout: float = 120) -> int:
    """Waits until the service at `url` is ready; returns its pid. If `up` ends first, fails
    with the end of what it said (its stderr file, `said`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert up.poll() is None, f"scfed up ended: {' '.join(said.read_text().split())[-2000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                replica = httpx.get(f"{url}/v1/replica", timeout=2).json()
                assert replica["event_loop"] == "uvloop"  # the default of a started service
                return int(replica["pid"])
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout}s")


def test_up_restarts_a_killed_service_and_bookings_complete_again(tmp_path: Path) -> None:
    offset = _free_offset()
    http = {a: f"http://127.0.0.1:{a.profile.http_port + offset}" for a in Agency}
    grpc = {a: f"127.0.0.1:{a.profile.grpc_port + offset}" for a in Agency}
    stderr_path = tmp_path / "up.stderr"
    with stderr_path.open("w") as stderr:
        up = subprocess.Popen(
            [*SCFED, "up", "--data-dir", str(tmp_path / "fed"), "--port-offset", str(offset)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        pids = {a: _ready(url, up, stderr_path) for a, url in http.items()}
        os.kill(pids[Agency.LESC], signal.SIGKILL)
        again = _ready(http[Agency.LESC], up, stderr_path)
        assert again != pids[Agency.LESC]
        # The others were never restarted.
        for agency in (Agency.SIB, Agency.CJIS_IAFIS, Agency.IDENT, Agency.ICE_FIELD):
            assert _ready(http[agency], up, stderr_path) == pids[agency]

        args = ["demo", "--sib-url", http[Agency.SIB], "--json"]
        for agency in Agency:
            args += ["--addr", f"{agency}={grpc[agency]}"]
            if agency != Agency.SIB:
                args += ["--url", f"{agency}={http[agency]}"]
        args += ["--bookings", "3", "--seed", "5", "--timeout", "120"]
        # As a user would: the same data dir, so the operator's certificate `up` made there.
        demo = subprocess.run(
            [*SCFED, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "SCFED_DATA_DIR": str(tmp_path / "fed")},
        )
        assert demo.returncode == 0, demo.stderr[-3000:]
        result = json.loads(demo.stdout)
        assert result["bookings"] == 3 and result["unanswered"] == 0, result
        assert up.poll() is None, "the federation keeps running"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    said = " ".join(stderr_path.read_text().split())
    assert "supervisor: lesc was killed by SIGKILL; restarting it in 1s" in said, said[-2000:]
    assert "supervisor: lesc restarted (pid " in said
    assert up.returncode == 0, said[-2000:]


def test_the_supervisor_gives_up_on_a_service_that_keeps_failing_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    # LESC refuses its configuration at every start (exit code 2); the others are fine.
    fed = LocalFederation(data_dir=tmp_path, extra_env={"SCFED_LESC_OUTBOX_BATCH": "0"})
    policy = RestartPolicy(max_fast_failures=3, base_delay_s=0.1)
    lines: list[str] = []
    fed.start()
    try:
        lesc = fed.services[Agency.LESC]
        deadline = time.monotonic() + 120
        while not lesc.given_up and time.monotonic() < deadline:
            lines += fed.supervise(policy, time.monotonic())
            time.sleep(0.05)
        assert lesc.given_up, lines
        others = [svc for name, svc in fed.services.items() if name != Agency.LESC]
        assert all(svc.process is not None and svc.process.poll() is None for svc in others)
        assert not fed.all_given_up()
    finally:
        fed.stop()
    assert lines[0].startswith("lesc exited with code 2 (")
    assert "restarting it in 0.1s" in lines[0]
    assert lines[-1].startswith("lesc exited with code 2")
    assert "3 failures within 60s: giving up on it (the rest keep running)" in lines[-1]
    assert sum("restarted" in line for line in lines) == 2


def test_up_takes_its_supervision_limits_from_options_and_the_environment(
    tmp_path: Path,
) -> None:
    offset = _free_offset()
    http = {a: f"http://127.0.0.1:{a.profile.http_port + offset}" for a in Agency}
    lesc = http[Agency.LESC]
    stderr_path, stdout_path = tmp_path / "up.stderr", tmp_path / "up.stdout"
    with stderr_path.open("w") as stderr, stdout_path.open("w") as stdout:
        up = subprocess.Popen(
            [
                *SCFED,
                *("up", "--data-dir", str(tmp_path / "fed"), "--port-offset", str(offset)),
                *("--max-fast-failures", "2", "--max-restart-delay", "0.5"),
            ],
            cwd=ROOT,
            env={**os.environ, "SCFED_UP_RESTART_WINDOW_S": "90"},
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        # The federation started and supervised first (`up` says "Ctrl-C stops"): a service
        # that ends while `up` still waits for the start is a failed start (exit 1).
        for url in http.values():
            _ready(url, up, stderr_path)
        deadline = time.monotonic() + 60
        while "Ctrl-C stops" not in stdout_path.read_text() and time.monotonic() < deadline:
            assert up.poll() is None, stderr_path.read_text()[-2000:]
            time.sleep(0.1)
        os.kill(_ready(lesc, up, stderr_path), signal.SIGKILL)
        os.kill(_ready(lesc, up, stderr_path), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "giving up" not in stderr_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert up.poll() is None, "the others keep running"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    said = " ".join(stderr_path.read_text().split())
    assert "lesc was killed by SIGKILL; restarting it in 0.5s" in said, said[-2000:]
    assert "2 failures within 90s: giving up on it (the rest keep running)" in said, said[-2000:]
