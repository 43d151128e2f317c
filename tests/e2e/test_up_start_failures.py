"""`scfed up` and `scfed demo` that cannot start say why: a port another federation holds is
named, and the wait for readiness lasts as long as --ready-timeout (or SCFED_READY_TIMEOUT) says,
then names the services not ready."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, SCFED, _free_offset

pytestmark = pytest.mark.e2e


def _scfed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCFED, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_gives_up_after_the_ready_timeout_from_the_environment(tmp_path: Path) -> None:
    # Five interpreters cannot start in a tenth of a second: none is ready in time.
    result = _scfed(
        "up",
        "--data-dir",
        str(tmp_path),
        "--port-offset",
        str(_free_offset()),
        env={"SCFED_READY_TIMEOUT": "0.1"},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    stderr = " ".join(result.stderr.split())
    assert "federation did not start: not ready after 0.1s:" in stderr
    for name in ("sib", "cjis_iafis", "ident", "lesc", "ice_field"):
        assert f"{name}#1 (" in stderr


def test_demo_gives_up_after_the_ready_timeout_option(tmp_path: Path) -> None:
    result = _scfed(
        "demo", "--bookings", "1", "--data-dir", str(tmp_path), "--ready-timeout", "0.1"
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "demo failed: not ready after 0.1s:" in " ".join(result.stderr.split())


def test_a_ready_timeout_that_is_not_positive_is_refused() -> None:
    result = _scfed("up", "--ready-timeout", "0")
    assert result.returncode == 2
    stderr = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--ready-timeout'" in stderr
    assert "greater than or equal to 0.1" in stderr


def test_up_beside_another_federation_names_the_port_it_holds(tmp_path: Path) -> None:
    offset = _free_offset()
    taken = 50053 + offset
    with socket.create_server(("127.0.0.1", taken)):
        result = _scfed("up", "--data-dir", str(tmp_path), "--port-offset", str(offset))
    assert result.returncode == 1, result.stderr[-2000:]
    stderr = " ".join(result.stderr.split())
    assert "federation did not start: ident exited with code 3 at start" in stderr
    assert f"ident: gRPC port {taken} is already in use" in stderr
