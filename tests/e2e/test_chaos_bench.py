"""`scfed bench chaos` on a short run: a kill, a pause, a partition, lost acks and transient
errors, and nothing lost, duplicated or dead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

SCFED = [sys.executable, "-m", "services.cli.main"]
FAULTS = {"kills", "pauses", "partitions", "lost_acks", "transient_errors"}


def test_a_short_chaos_run_answers_every_booking_once_with_no_dead_letters() -> None:
    run = subprocess.run(
        [*SCFED, "bench", "chaos", "--bookings", "32", "--drain-timeout", "60", "--json"],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["bookings"] == report["submitted"] == report["answered"] == 32
    assert report["lost"] == report["duplicated"] == report["dead_letters"] == 0
    assert report["drained"] and report["drain_s"] >= 0 and report["redelivered"] >= 0
    assert set(report["faults"]) == FAULTS
    # One agency killed and restarted, one paused, one pair partitioned; every service has
    # its fault rules, so no kind is unavailable.
    assert report["faults"]["kills"] == report["faults"]["pauses"] == 1
    assert report["faults"]["partitions"] == 1 and report["unavailable"] == []
    assert report["episodes"] == 5 and report["crashed"] == []
    assert report["elapsed_s"] > 0 and report["database"] == "sqlite"
