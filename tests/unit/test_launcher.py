"""The local launcher: a service process that ends while the federation should run is reported
with its exit code and the end of its log; services not ready in time are named with why."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
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


class _NotReady(BaseHTTPRequestHandler):
    """A /readyz that answers 503 with the reason, as a service whose database is down."""

    def do_GET(self) -> None:
        body = b'{"status":"not-ready","reason":"database does not answer"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return None


async def test_wait_ready_gives_up_after_its_setting_naming_each_service_not_ready_and_why(
    tmp_path: Path,
) -> None:
    fed = LocalFederation(data_dir=tmp_path, ready_timeout=0.3)
    sib = fed.services["sib"]
    server = HTTPServer(("127.0.0.1", sib.http_port), _NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError) as failure:
            await fed.wait_ready()
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 10
    message = str(failure.value)
    assert message.startswith("not ready after 0.3s: ")
    assert 'sib#1 (/readyz 503: {"status":"not-ready","reason":"database does not answer"})' in (
        message
    )
    for name in ("cjis_iafis", "ident", "lesc", "ice_field"):
        url = fed.services[name].http_url
        assert f"{name}#1 (no answer at {url}/readyz)" in message
    assert message.endswith("allow longer with --ready-timeout or SCFED_READY_TIMEOUT")
