"""`scfed clock`, `scfed reset` and `scfed faults` against a federation that already runs in
this process.

Every call names all five HTTP edges with --url: the default ports may belong to another
federation on the same machine, and a test must never reset that one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.federation import Agency
from services.ident.models import IdentityRecord
from services.runtime.clock import AcceleratedClock, ManualClock
from services.runtime.ports import free_port
from tests.federation import DatabaseChoice, Federation, running_federation
from tests.scenario import scenario_in

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2009, 10, 1, 12, 0, tzinfo=UTC)


async def _scfed(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Runs the scfed command in a child process while this loop keeps serving the federation
    (in-process, so plaintext: the command is told so, as an operator would be)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        cwd=ROOT,
        env={**os.environ, "SCFED_TLS": "off", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    # Rich boxes and wraps usage errors; one line of words reads the same at any width.
    return proc.returncode, out.decode(), " ".join(err.decode().replace("│", " ").split())


def _urls(fed: Federation) -> list[str]:
    args: list[str] = []
    for name, host in fed.hosts.items():
        args += ["--url", f"{name}={host.http_url}"]
    return args


@pytest.fixture
async def fed(db: DatabaseChoice) -> AsyncIterator[tuple[Federation, ManualClock]]:
    """LESC on a manual clock, the field office accelerated, the rest real."""
    clock = ManualClock(START)
    async with running_federation(
        db, lesc={"clock": clock}, ice_field={"clock": AcceleratedClock(10.0)}
    ) as federation:
        yield federation, clock


async def test_clock_advance_steps_the_manual_clocks_and_names_the_others(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, clock = fed
    code, out, err = await _scfed("clock", "advance", "1d2h", *_urls(federation), "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    assert set(result["done"]) == {"lesc"}
    assert result["done"]["lesc"]["now"] == (START + timedelta(days=1, hours=2)).isoformat()
    assert set(result["refused"]) == {"sib", "cjis_iafis", "ident", "ice_field"}
    assert "409" in result["refused"]["sib"] and result["unreachable"] == {}
    assert clock.now() == START + timedelta(days=1, hours=2)


async def test_clock_advance_exits_1_when_a_named_service_cannot_step(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, clock = fed
    code, _, err = await _scfed(
        "clock", "advance", "PT30M", "--service", "sib", "--service", "lesc", *_urls(federation)
    )
    assert code == 1
    assert "sib: refused" in err and "real clock" in err
    assert clock.now() == START + timedelta(minutes=30)


async def test_clock_advance_refuses_a_bad_duration_before_calling_anyone(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, clock = fed
    code, _, err = await _scfed("clock", "advance", "P1Y", *_urls(federation))
    assert code == 2 and "years and months" in err
    code, _, err = await _scfed("clock", "advance", "1h", "--service", "nsa", *_urls(federation))
    assert code == 2 and "unknown agency" in err
    assert clock.now() == START


async def test_clock_set_repaces_the_accelerated_clock(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, _ = fed
    code, out, err = await _scfed(
        "clock", "set", "accelerated:120", "--service", "ice_field", *_urls(federation)
    )
    assert code == 0, err
    assert "ice_field: accelerated:120 clock" in out
    clock = federation.hosts[Agency.ICE_FIELD].runtime.clock
    assert isinstance(clock, AcceleratedClock) and clock.factor == 120


async def test_reset_empties_the_federation_and_seeds_it_again(
    fed: tuple[Federation, ManualClock],
) -> None:
    federation, _ = fed
    async with scenario_in(federation) as s:
        tcn = await s.book(s.subject(), "CA0190000")
        await s.final(tcn)
    env = {
        Agency(name).profile.address_variable: address
        for name, address in federation.addresses().items()
    }
    code, out, err = await _scfed(
        "reset", "--seed", "4", "--world-size", "5", *_urls(federation), "--json", env=env
    )
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    assert set(result["done"]) == set(Agency)
    assert result["reset_seconds"] > 0 and result["seed_seconds"] > 0
    assert result["seeded"]["states"] > 0 and result["seeded"]["ident_encounters"] > 0
    async with httpx.AsyncClient(base_url=federation.sib_url) as client:
        assert (await client.get(f"/v1/bookings/{tcn}")).status_code == 404
    # The index holds exactly the identities the new world put on file, none of the old ones.
    host = federation.hosts[Agency.IDENT]
    async with host.runtime.db.session() as session:
        identities = await session.scalar(select(func.count()).select_from(IdentityRecord))
    ident: Any = host.provider
    assert identities and len(ident.gallery.engine) == identities


async def test_reset_names_a_service_that_does_not_answer_and_exits_1() -> None:
    urls: list[str] = []
    for agency in Agency:
        urls += ["--url", f"{agency}=http://127.0.0.1:{free_port()}"]
    code, out, _ = await _scfed("reset", *urls, "--json")
    assert code == 1
    result = json.loads(out)
    assert set(result["unreachable"]) == set(Agency) and result["done"] == {}


async def test_snapshot_save_load_and_list_bring_a_reset_federation_back(
    fed: tuple[Federation, ManualClock], tmp_path: Path
) -> None:
    federation, _ = fed
    async with scenario_in(federation) as s:
        tcn = await s.book(s.subject(), "CA0190000")
        await s.final(tcn)
        await s.quiet()
    snapshots = tmp_path / "snaps"
    code, out, err = await _scfed(
        "snapshot", "save", "before", "--dir", str(snapshots), *_urls(federation), "--json"
    )
    assert code == 0, err
    saved: dict[str, Any] = json.loads(out)
    assert set(saved["done"]) == set(Agency) and saved["seconds"] > 0
    assert sorted(p.name for p in (snapshots / "before").iterdir()) == sorted(
        f"{agency}.json" for agency in Agency
    )

    code, _, err = await _scfed("reset", *_urls(federation))
    assert code == 0, err
    async with httpx.AsyncClient(base_url=federation.sib_url) as client:
        assert (await client.get(f"/v1/bookings/{tcn}")).status_code == 404

    # The directory from the environment, as an operator would set it once.
    env = {"SCFED_SNAPSHOT_DIR": str(snapshots)}
    code, out, err = await _scfed("snapshot", "load", "before", *_urls(federation), env=env)
    assert code == 0, err
    assert "ident: loaded" in out and "snapshot before loaded" in out
    async with httpx.AsyncClient(base_url=federation.sib_url) as client:
        view = (await client.get(f"/v1/bookings/{tcn}")).json()
    assert view["status"] == "answered"
    host = federation.hosts[Agency.IDENT]
    async with host.runtime.db.session() as session:
        identities = await session.scalar(select(func.count()).select_from(IdentityRecord))
    ident: Any = host.provider
    assert identities and len(ident.gallery.engine) == identities

    code, out, err = await _scfed("snapshot", "list", "--json", env=env)
    assert code == 0, err
    listed = json.loads(out)["snapshots"]
    assert [s["name"] for s in listed] == ["before"]
    assert sorted(listed[0]["services"]) == sorted(Agency) and listed[0]["bytes"] > 0


async def test_snapshot_load_names_a_missing_file_and_a_bad_name(
    fed: tuple[Federation, ManualClock], tmp_path: Path
) -> None:
    federation, _ = fed
    code, _, err = await _scfed(
        "snapshot", "save", "part", "--service", "lesc", "--dir", str(tmp_path), *_urls(federation)
    )
    assert code == 0, err
    code, out, err = await _scfed(
        "snapshot", "load", "part", "--dir", str(tmp_path), *_urls(federation), "--json"
    )
    assert code == 1
    result = json.loads(out)
    assert set(result["done"]) == {"lesc"}
    assert set(result["missing"]) == set(Agency) - {Agency.LESC}
    code, _, err = await _scfed("snapshot", "load", "never", "--dir", str(tmp_path))
    assert code == 2 and "no snapshot 'never'" in err
    code, _, err = await _scfed("snapshot", "save", "../up", "--dir", str(tmp_path))
    assert code == 2 and "a snapshot name is" in err


async def test_snapshot_save_names_a_service_that_does_not_answer_and_exits_1(
    tmp_path: Path,
) -> None:
    urls: list[str] = []
    for agency in Agency:
        urls += ["--url", f"{agency}=http://127.0.0.1:{free_port()}"]
    code, out, _ = await _scfed("snapshot", "save", "x", "--dir", str(tmp_path), *urls, "--json")
    assert code == 1
    result = json.loads(out)
    assert set(result["unreachable"]) == set(Agency) and result["done"] == {}
    assert list((tmp_path / "x").iterdir()) == []


async def test_faults_add_list_partition_and_clear(fed: tuple[Federation, ManualClock]) -> None:
    federation, _clock = fed
    urls = _urls(federation)
    code, out, err = await _scfed(
        "faults", "add", "lesc", "--service", "ident", "--action", "latency", "--latency", "1.5s",
        "--spread", "200ms", "--distribution", "normal", "--type", "IAQ",
        "--probability", "0.5", "--count", "3", *urls,
    )  # fmt: skip
    assert code == 0, err
    assert "lesc f1: latency 1500±200 ms normal on receive [message_type=IAQ] p=0.5 3 left" in out
    assert "ident f1:" in out

    code, out, err = await _scfed("faults", "partition", "sib", "cjis-iafis", *urls, "--json")
    assert code == 0, err
    done = json.loads(out)["done"]
    assert (done["sib"]["peer"], done["cjis_iafis"]["peer"]) == ("cjis_iafis", "sib")

    code, out, err = await _scfed("faults", "list", "--service", "sib", *urls, "--json")
    assert code == 0, err
    assert [r["action"] for r in json.loads(out)["done"]["sib"]["rules"]] == ["partition"]

    code, out, err = await _scfed("faults", "clear", "--service", "lesc", "--id", "f1", *urls)
    assert code == 0 and "lesc: 1 rule(s) cleared" in out, err
    code, out, err = await _scfed("faults", "clear", *urls)
    assert code == 0, err
    assert "ident: 1 rule(s) cleared" in out and "sib: 1 rule(s) cleared" in out
    code, out, err = await _scfed("faults", "list", *urls)
    assert code == 0 and out.count("no fault rules") == 5, out


async def test_faults_add_says_why_a_rule_is_refused(fed: tuple[Federation, ManualClock]) -> None:
    federation, _clock = fed
    urls = _urls(federation)
    code, _out, err = await _scfed("faults", "add", "lesc", "--action", "partition", *urls)
    assert code == 1 and "lesc: refused 422" in err and "peer" in err
    code, _out, err = await _scfed(
        "faults", "add", "lesc", "--action", "latency", "--latency", "soon", *urls
    )
    assert code == 2 and "250ms" in err
    code, _out, err = await _scfed("faults", "clear", "--id", "f1", *urls)
    assert code == 2 and "exactly one --service" in err
    code, out, _err = await _scfed("faults", "list", *urls, "--json")
    assert all(v["rules"] == [] for v in json.loads(out)["done"].values())
