"""The local launcher: a service process that ends while the federation should run is reported
with its exit code and the end of its log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.launcher import LocalFederation


def test_check_running_names_the_ended_process_with_its_exit_code_and_log(tmp_path: Path) -> None:
    fed = LocalFederation(data_dir=tmp_path)
    fed.check_running("during the demo")  # nothing started, nothing ended
    lesc = fed.services["lesc"]
    lesc.log_path = tmp_path / "lesc.log"
    lesc.log_path.write_text("starting\nTraceback: boom\n")
    lesc.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    lesc.process.wait()
    with pytest.raises(RuntimeError) as failure:
        fed.check_running("during the demo")
    message = str(failure.value)
    assert message.startswith("services exited during the demo: lesc")
    assert "lesc#1 exited with code 3" in message and "Traceback: boom" in message
