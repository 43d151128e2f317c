"""Targets for the conformance kit: one of our services alone (as a team would run it, in its
own process) or in process with one rule deliberately broken, wired to the kit's fake peers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.conformance.kit import Report, run
from services.federation import Agency
from services.runtime.ports import free_port
from tests.federation import DatabaseChoice, make_host
from tests.support import eventually


@dataclass(frozen=True)
class Target:
    """A server under test and where the kit's fake peers must listen for it."""

    agency: Agency
    address: str
    http_url: str
    peers: dict[Agency, str]
    # The certificates when the target serves mutual TLS; None in plaintext.
    tls_dir: Path | None = None

    async def check(self, *patterns: str, deadline: float = 10.0) -> Report:
        """The agency's suite (or the cases `patterns` select) against this target."""
        return await run(
            self.agency,
            self.address,
            http_url=self.http_url,
            peers=self.peers,
            patterns=patterns,
            deadline=deadline,
            quiet=0.7,
            strict=True,
            tls_dir=self.tls_dir,
        )


def _peer_ports(agency: Agency) -> dict[Agency, str]:
    return {peer: f"127.0.0.1:{free_port()}" for peer in Agency if peer != agency}


@asynccontextmanager
async def alone(
    agency: Agency, data_dir: Path, *, tls_dir: Path | None = None
) -> AsyncIterator[Target]:
    """`python -m services.<agency>` on free ports, its peers' addresses set to free ports: with
    mutual TLS and the certificates in `tls_dir` when given, in plaintext otherwise (a SIB
    requires LEA credentials either way, its default)."""
    peers = _peer_ports(agency)
    grpc_port, http_port = free_port(), free_port()
    prefix = agency.profile.env_prefix
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCFED_")},
        "SCFED_DATA_DIR": str(data_dir),
        "SCFED_TLS": "on" if tls_dir else "off",
        **({"SCFED_TLS_DIR": str(tls_dir)} if tls_dir else {}),
        f"{prefix}GRPC_PORT": str(grpc_port),
        f"{prefix}HTTP_PORT": str(http_port),
        **{peer.profile.address_variable: address for peer, address in peers.items()},
    }
    # Its log goes to a file: a pipe nobody reads while it runs would fill with its delivery
    # lines (its peers never answer) and stall it.
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{agency}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", agency.profile.module],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    http_url = f"http://127.0.0.1:{http_port}"
    try:
        async with httpx.AsyncClient(base_url=http_url, timeout=2) as client:

            async def ready() -> bool:
                if process.poll() is not None:
                    stderr = log_path.read_text(errors="replace")
                    pytest.fail(f"{agency} exited at start: {stderr[-2000:]}")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=60, what=f"{agency} to be ready")
        yield Target(agency, f"127.0.0.1:{grpc_port}", http_url, peers, tls_dir)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()


@asynccontextmanager
async def in_process(
    agency: Agency, db: DatabaseChoice, *, tls_dir: Path | None = None
) -> AsyncIterator[Target]:
    """The agency in this process on free ports (so a test can break one of its rules): with
    mutual TLS and the certificates in `tls_dir` when given."""
    peers = _peer_ports(agency)
    settings: dict[str, Any] = {f"{peer}_addr": address for peer, address in peers.items()}
    if tls_dir is not None:
        settings.update(tls="on", tls_dir=tls_dir)
    host = make_host(agency, db, **settings)
    await host.start()
    try:
        yield Target(agency, host.grpc_address, host.http_url, peers, tls_dir)
    finally:
        await host.stop()


@dataclass(frozen=True)
class Broken:
    """A variant of one of our agencies with one rule broken, and the case that must catch it."""

    agency: Agency
    name: str
    caught_by: str
    apply: Callable[[pytest.MonkeyPatch], None]

    def __str__(self) -> str:
        return f"{self.agency}: {self.name}"
