"""No two federations share a port: a service whose gRPC or HTTP port is taken fails to start,
naming the port, instead of binding beside the other server (gRPC's default SO_REUSEPORT)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from services.federation import Agency
from services.runtime.server import PORT_UNAVAILABLE_EXIT, PortUnavailable
from tests.federation import DatabaseChoice, make_host

ROOT = Path(__file__).resolve().parents[2]


async def test_a_second_service_on_a_taken_grpc_or_http_port_fails_naming_the_port(
    tmp_path: Path,
) -> None:
    first = make_host(Agency.IDENT, DatabaseChoice("sqlite", tmp_path / "first"))
    await first.start()
    try:
        same_grpc = make_host(
            Agency.IDENT, DatabaseChoice("sqlite", tmp_path / "second"), grpc_port=first.grpc_port
        )
        with pytest.raises(
            PortUnavailable, match=f"^gRPC port {first.grpc_port} is already in use$"
        ):
            await same_grpc.start()
        same_http = make_host(
            Agency.IDENT, DatabaseChoice("sqlite", tmp_path / "third"), http_port=first.http_port
        )
        with pytest.raises(
            PortUnavailable, match=f"^HTTP port {first.http_port} is already in use$"
        ):
            await same_http.start()
        # The first one keeps serving, alone, on both ports.
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{first.http_url}/readyz")).status_code == 200
    finally:
        await first.stop()


async def test_a_service_process_exits_with_a_clear_error_when_another_grpc_server_holds_its_port(
    tmp_path: Path,
) -> None:
    # Another federation's server, with gRPC's default options (SO_REUSEPORT on).
    other = grpc.aio.server()
    port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "services.ident"],
            cwd=ROOT,
            env={
                **os.environ,
                "SCFED_DATA_DIR": str(tmp_path),
                "SCFED_IDENT_GRPC_PORT": str(port),
                "SCFED_IDENT_HTTP_PORT": "0",
                # The port is what is under test here, not certificates.
                "SCFED_TLS": "off",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        await other.stop(None)
    assert result.returncode == PORT_UNAVAILABLE_EXIT, result.stderr[-2000:]
    assert f"ident: gRPC port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
