"""An agency someone else runs, in place of ours: `scfed up --external ident=HOST:PORT` starts
the other four, seeds the outside IDENT, carries bookings end to end through it, and the remote
demo, trace and report name what they cannot read instead of failing.

The outside IDENT is a stand-in that serves only IDENT's own proto (no Journal, no health): a
forwarding proxy in front of our IDENT started alone with its own environment, as a team's
implementation would be. The federation runs plaintext here (SCFED_TLS=off, the documented way
out): a forwarding proxy cannot present CJIS's certificate to the IDENT behind it. The SIB
still requires LEA keys, which the remote demo issues with --no-seed-world.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from services.federation import Agency
from services.runtime.ports import free_port
from tests.e2e.test_cli import _free_offset

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCFED = (sys.executable, "-m", "services.cli.main")
IDENT_SERVICE = "/scfed.ident.v1.Ident/"


class _ForwardIdent(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers IDENT's own methods by forwarding them, bytes as they are; nothing else."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        if not method.startswith(IDENT_SERVICE):
            return None  # UNIMPLEMENTED: no Journal, no health, no reflection
        call = self._channel.unary_unary(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await call(request, timeout=120)
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")

        return grpc.unary_unary_rpc_method_handler(forward)


@asynccontextmanager
async def _stand_in(target: str) -> AsyncIterator[str]:
    """A gRPC server on a free port that serves IDENT's proto by forwarding to `target`."""
    async with grpc.aio.insecure_channel(target) as channel:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([_ForwardIdent(channel)])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            await server.stop(0.5)


async def _ready(url: str, alive: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            assert alive(), f"the process behind {url} exited at start"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


async def _scfed(args: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Runs one scfed command while this loop keeps serving the stand-in."""
    proc = await asyncio.create_subprocess_exec(
        *SCFED,
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_an_external_ident_carries_bookings_and_is_reported_honestly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCFED_TLS", "off")
    offset = _free_offset()
    ours = {a: f"127.0.0.1:{a.profile.grpc_port + offset}" for a in Agency if a != Agency.IDENT}
    http = {a: f"http://127.0.0.1:{a.profile.http_port + offset}" for a in ours}
    ident_grpc, ident_http = free_port(), free_port()
    # The outside IDENT, configured as a team would: its own data, its own ports, our peers.
    ident = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ident",
        cwd=ROOT,
        env={
            **os.environ,
            "SCFED_DATA_DIR": str(tmp_path / "outside-ident"),
            "SCFED_IDENT_GRPC_PORT": str(ident_grpc),
            "SCFED_IDENT_HTTP_PORT": str(ident_http),
            **{a.profile.address_variable: address for a, address in ours.items()},
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    up: asyncio.subprocess.Process | None = None
    try:
        await _ready(f"http://127.0.0.1:{ident_http}", lambda: ident.returncode is None)
        async with _stand_in(f"127.0.0.1:{ident_grpc}") as external:
            up = await asyncio.create_subprocess_exec(
                *SCFED,
                "up",
                "--data-dir",
                str(tmp_path / "fed"),
                "--port-offset",
                str(offset),
                "--seed",
                "3",
                "--world-size",
                "20",
                "--external",
                f"ident={external}",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for url in http.values():
                await _ready(url, lambda: up is not None and up.returncode is None)
            # `up --seed` enrolled the world's IDENT encounters in the outside IDENT.
            async with httpx.AsyncClient() as client:
                deadline = time.monotonic() + 90
                gallery = 0
                while not gallery and time.monotonic() < deadline:
                    stats = await client.get(f"http://127.0.0.1:{ident_http}/v1/stats")
                    gallery = stats.json()["gallery_size"]
                    await asyncio.sleep(0.2)
            assert gallery > 0
            # Our IDENT was not started: nothing answers on its port.
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{8083 + offset}/readyz", timeout=1)

            args = ["demo", "--sib-url", http[Agency.SIB], "--no-seed-world", "--json"]
            for agency in ours:
                args += ["--addr", f"{agency}={ours[agency]}"]
                if agency != Agency.SIB:
                    args += ["--url", f"{agency}={http[agency]}"]
            args += ["--external", f"ident={external}", "--bookings", "20", "--seed", "3"]
            args += ["--concurrency", "8", "--timeout", "120"]
            code, out, err = await _scfed(args, dict(os.environ))
            assert code == 0, err[-3000:]
            result = json.loads(out)
            assert result["unanswered"] == 0 and result["problems"] == []
            assert result["external"] == ["ident"] and result["unreachable"] == []
            assert set(result["counted_services"]) == set(ours)
            assert result["ident_searches"] is None and result["ident_matches"] is None
            assert "IAQ = IDENT matches (no ident_matches)" in result["unchecked"]
            # Matches came back through the outside IDENT: IDR/IAR pairs reached the SIB.
            assert result["joint_idr_iar"] > 0
            assert result["iaq"] == result["iar"] == result["joint_idr_iar"]
            assert result["car"] + result["cpi"] == result["sre"]

            # Where a user's shell would say where the federation is, the outside IDENT included.
            trace_env = {
                **os.environ,
                "SCFED_IDENT_ADDR": external,
                **{a.profile.address_variable: address for a, address in ours.items()},
            }
            tcn = result["sample_tcn"]
            code, out, err = await _scfed(["trace", tcn, "--json"], trace_env)
            assert code == 0, err[-3000:]
            said = " ".join(err.split())  # rich wraps long lines
            assert (
                f"left out of the trace: ident ({external}: UNIMPLEMENTED serves no Journal)"
                in said
            )
            entries = json.loads(out)
            assert {e["service"] for e in entries} <= set(ours)
            assert ("sib", "BOOKING") in {(e["service"], e["tot"]) for e in entries}
            assert "Traceback" not in err

            # A report whose LESC edge is not there: LESC's measures are named, not zero.
            nowhere = f"http://127.0.0.1:{8083 + offset}"
            report = ["report", "--json", "--url", f"lesc={nowhere}"]
            report += ["--url", f"sib={http[Agency.SIB]}"]
            report += ["--url", f"ice_field={http[Agency.ICE_FIELD]}"]
            code, out, err = await _scfed(report, dict(os.environ))
            assert code == 0, err[-3000:]
            measures = {row["key"]: row for row in json.loads(out)["measures"]}
            assert measures["aliens_identified"]["unreadable"] == ["lesc"]
            assert measures["biometric_coverage_pct"]["value"] is not None
            assert "lesc" in json.loads(out)["unreadable"]

            up.send_signal(signal.SIGINT)
            up_out, up_err = await asyncio.wait_for(up.communicate(), 60)
            assert up.returncode == 0, up_err.decode()[-2000:]
            warned = " ".join(up_err.decode().split())
            assert (
                f"external ident does not answer gRPC health: {external}: UNIMPLEMENTED" in warned
            )
            assert "(external)" in up_out.decode()
    finally:
        for proc in (up, ident):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)
