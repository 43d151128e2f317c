"""The local launcher: a service process that ends while the federation should run is reported
with its exit code and the end of its log; services not ready in time are named with why."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import grpc
import pytest

from services.cli.demo import DemoOptions, run_demo
from services.cli.launcher import (
    LocalFederation,
    RestartPolicy,
    exit_reason,
    external_agencies,
    external_health,
)
from services.federation import Agency
from services.runtime.ports import free_port


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


def test_a_federation_wide_address_is_honoured_and_its_agency_not_started(
    tmp_path: Path,
) -> None:
    external = external_agencies({"SCFED_IDENT_ADDR": "10.0.0.9:6000", "SCFED_SIB_GRPC_PORT": "1"})
    assert external == {Agency.IDENT: "10.0.0.9:6000"}
    fed = LocalFederation(data_dir=tmp_path, external=external)
    assert Agency.IDENT not in fed.services
    assert {p.name for p in fed.processes()} == set(Agency) - {Agency.IDENT}
    for name in fed.services:
        assert fed.environment(name)["SCFED_IDENT_ADDR"] == "10.0.0.9:6000"
    assert fed.all_addresses()[Agency.IDENT] == "10.0.0.9:6000"


def test_the_launcher_reads_external_agencies_from_its_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCFED_LESC_ADDR", "127.0.0.1:7001")
    fed = LocalFederation(data_dir=tmp_path)
    assert fed.external == {Agency.LESC: "127.0.0.1:7001"}
    assert fed.environment(Agency.SIB)["SCFED_LESC_ADDR"] == "127.0.0.1:7001"


def test_an_external_option_wins_over_the_environment() -> None:
    external = external_agencies(
        {"SCFED_IDENT_ADDR": "10.0.0.9:6000"}, ["ident=127.0.0.1:7000", "cjis-iafis=h:1"]
    )
    assert external == {Agency.IDENT: "127.0.0.1:7000", Agency.CJIS_IAFIS: "h:1"}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("ident", "expected NAME=HOST:PORT"),
        ("ident=127.0.0.1", "expected NAME=HOST:PORT"),
        ("ident=:50053", "expected NAME=HOST:PORT"),
        ("fbi=127.0.0.1:1", "unknown agency 'fbi'"),
    ],
)
def test_a_malformed_external_is_refused_with_the_reason(item: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        external_agencies({}, [item])


async def test_external_health_names_an_agency_that_serves_no_health() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        silent = f"127.0.0.1:{port}"
        problems = await external_health({Agency.IDENT: silent}, timeout=2)
    finally:
        await server.stop(0)
    assert problems[Agency.IDENT].startswith(f"{silent}: UNIMPLEMENTED")
    down = f"127.0.0.1:{free_port()}"
    problems = await external_health({Agency.LESC: down}, timeout=1)
    assert problems[Agency.LESC].startswith(f"{down}: ")


def test_the_local_demo_refuses_an_external_agency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCFED_IDENT_ADDR", "127.0.0.1:7000")
    with pytest.raises(ValueError, match="SCFED_IDENT_ADDR names an external one"):
        asyncio.run(run_demo(DemoOptions(bookings=1, seed=1)))


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


def test_the_supervisor_restarts_with_doubling_backoff_and_gives_up_after_five_fast_failures() -> (
    None
):
    policy = RestartPolicy()
    delays = [policy.after_exit("lesc", now) for now in (0.0, 1.0, 3.0, 7.0)]
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert policy.after_exit("lesc", 15.0) is None  # the fifth within a minute
    # Another service's failures are its own.
    assert policy.after_exit("ident", 15.0) == 1.0


def test_failures_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_fast_failures=3, window_s=60.0)
    assert policy.after_exit("sib", 0.0) == 1.0
    assert policy.after_exit("sib", 10.0) == 2.0
    assert policy.after_exit("sib", 100.0) == 1.0  # the two earlier ones are out of the window
    assert policy.after_exit("sib", 101.0) == 2.0
    assert policy.after_exit("sib", 102.0) is None


def test_an_exit_is_described_by_its_signal_or_its_code_and_last_line() -> None:
    assert exit_reason(-9) == "was killed by SIGKILL"
    assert exit_reason(4, "lesc: cannot reach its database at db:5432/x: refused\n") == (
        "exited with code 4 (lesc: cannot reach its database at db:5432/x: refused)"
    )
    assert exit_reason(1) == "exited with code 1"


def test_by_default_the_launcher_makes_certificates_once_and_passes_them_to_every_service(
    tmp_path: Path,
) -> None:
    fed = LocalFederation(data_dir=tmp_path)
    assert fed.ensure_certificates()
    assert (tmp_path / "certs" / "ca.pem").exists()
    assert not fed.ensure_certificates()
    for name in fed.services:
        environment = fed.environment(name)
        assert environment["SCFED_TLS"] == "on"
        assert environment["SCFED_TLS_DIR"] == str(tmp_path / "certs")


def test_without_tls_the_launcher_makes_no_certificates_and_says_plaintext(
    tmp_path: Path,
) -> None:
    fed = LocalFederation(data_dir=tmp_path, tls=False)
    assert not fed.ensure_certificates()
    assert not (tmp_path / "certs").exists()
    assert fed.environment(Agency.SIB)["SCFED_TLS"] == "off"
