"""`scfed demo --sib-url` and `scfed trace --sib-url` against a federation that already runs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from services.federation import Agency
from tests.federation import DatabaseChoice, Federation, running_federation

ROOT = Path(__file__).resolve().parents[2]


async def _scfed(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    """Runs the scfed command in a child process while this loop keeps serving the federation
    (in-process, so plaintext: the command is told so, as an operator would be)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        cwd=ROOT,
        env={**os.environ, "SCFED_TLS": "off"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _edges(fed: Federation) -> list[str]:
    args = ["--sib-url", fed.sib_url]
    for name, host in fed.hosts.items():
        if name != Agency.SIB:
            args += ["--url", f"{name}={host.http_url}"]
    return args


def _addrs(fed: Federation) -> list[str]:
    args = []
    for name, address in fed.addresses().items():
        args += ["--addr", f"{name}={address}"]
    return args


async def _remote_demo(fed: Federation, *extra: str) -> dict[str, Any]:
    code, out, err = await _scfed(
        "demo", *_edges(fed), "--json", "--timeout", "120", "--concurrency", "8", *extra
    )
    assert code == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def test_remote_demo_answers_every_booking_and_counts_only_its_own_run(
    db: DatabaseChoice,
) -> None:
    async with running_federation(db) as fed:
        first = await _remote_demo(fed, *_addrs(fed), "--bookings", "30", "--seed", "3")
        assert first["bookings"] == 30
        assert first["lea_keys"].startswith("issued for ")
        assert first["unanswered"] == 0
        assert first["problems"] == []
        assert set(first["counted_services"]) == set(Agency)
        assert first["car"] + first["cpi"] == 30 - first["refused"]
        assert first["ident_matches"] > 0  # the seeded world has IDENT encounters to find
        assert "not run" in first["removals"]

        # A second run of the same world on the same federation, without seeding: no booking
        # number collides with the first run's, and its counts are its own.
        second = await _remote_demo(fed, "--no-seed-world", "--bookings", "12", "--seed", "3")
        assert second["edge_refusals"] == []
        # No SIB gRPC address given, the default's does not answer: no keys (this SIB needs
        # none), and the run goes on saying so.
        assert second["lea_keys"].startswith("not issued: the SIB at ")
        assert second["bookings"] == 12
        assert second["unanswered"] == 0
        assert second["car"] + second["cpi"] == 12 - second["refused"]
        assert second["sre"] == second["car"] + second["cpi"]
        assert second["problems"] == []


async def test_remote_trace_shows_the_booking_path_across_services(db: DatabaseChoice) -> None:
    async with running_federation(db) as fed:
        result = await _remote_demo(fed, *_addrs(fed), "--bookings", "6", "--seed", "5")
        tcn = result["sample_tcn"]
        code, out, err = await _scfed("trace", tcn, *_edges(fed), "--json")
        assert code == 0, err[-2000:]
        entries = json.loads(out)
        services = {e["service"] for e in entries}
        assert {Agency.SIB, Agency.CJIS_IAFIS} <= services
        assert ("sent", "CAR") in {(e["direction"], e["tot"]) for e in entries} or (
            "sent",
            "CPI",
        ) in {(e["direction"], e["tot"]) for e in entries}
        assert any(e["tot"] == "SRE" and e["direction"] == "received" for e in entries)
        assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)

        # Only the SIB reachable (a Kubernetes port-forward): its part, and a note.
        code, out, err = await _scfed(
            "trace", tcn, "--sib-url", fed.sib_url, "--url", "lesc=http://127.0.0.1:9", "--json"
        )
        assert code == 0, err[-2000:]
        assert {e["service"] for e in json.loads(out)} >= {Agency.SIB}
        assert "lesc" in err


async def test_remote_demo_refuses_an_unreachable_sib() -> None:
    code, _out, err = await _scfed(
        "demo", "--sib-url", "http://127.0.0.1:9", "--no-seed-world", "--bookings", "1"
    )
    assert code == 1
    assert "demo failed" in err


async def test_remote_demo_sends_ebts_files_and_reads_every_answer_back(
    db: DatabaseChoice,
) -> None:
    async with running_federation(db) as fed:
        result = await _remote_demo(
            fed, *_addrs(fed), "--bookings", "8", "--seed", "4", "--format", "ebts"
        )
        assert result["format"] == "ebts" and result["problems"] == []
        assert result["unanswered"] == 0 and result["edge_refusals"] == []
        # Every booking has at least its SRE, read back as a file that names it.
        assert result["ebts_answers"].get("SRE", 0) == 8 - result["refused"]
        assert result["ebts_unreadable"] == []
