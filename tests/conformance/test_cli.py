"""`scfed conformance` as a team runs it: a subprocess against a server on loopback, with its
exit status, its lines, its JSON and its JUnit XML."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from xml.etree import ElementTree

from services.conformance.peers import FakePeers
from services.federation import Agency
from services.runtime.ports import free_port
from services.runtime.tls import init_certificates
from tests.conformance.harness import Target, alone

NO_MATCH_IDR = "Search of someone unknown is answered with a no-match IDR to CJIS"
EVERY_RPC = "Authorization: every RPC answers each certificate as the table says"


async def _scfed(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _peer_options(target: Target) -> list[str]:
    return [f"--peer={peer}={address}" for peer, address in target.peers.items()]


async def test_our_ident_with_mutual_tls_passes_with_lines_json_and_junit(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "ident.xml"
    certs = tmp_path / "certs"
    init_certificates(certs, days=1)
    async with alone(Agency.IDENT, tmp_path / "data", tls_dir=certs) as target:
        code, out, err = await _scfed(
            "conformance",
            "ident",
            f"--target={target.address}",
            f"--junit={junit}",
            *_peer_options(target),
            env={"SCFED_TLS_DIR": str(certs)},
        )
        assert code == 0, out + err
        assert f"PASS {NO_MATCH_IDR}" in out.splitlines()
        assert f"PASS {EVERY_RPC}" in out.splitlines()
        assert out.splitlines()[-1].endswith("0 failed, 0 skipped")

        code, out, err = await _scfed(
            "conformance",
            "ident",
            f"--target={target.address}",
            f"--tls-dir={certs}",
            "--json",
            "-k",
            "duplicate",
            *_peer_options(target),
        )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["failed"] == 0 and report["passed"] == len(report["cases"]) >= 1
    assert all("duplicate" in case["name"].lower() for case in report["cases"])
    assert set(report["cases"][0]) >= {"name", "outcome", "detail"}

    suite = ElementTree.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(suite.findall("testcase")) > 20


async def test_a_stand_in_that_never_sends_the_idr_fails_that_case_by_name(
    tmp_path: Path,
) -> None:
    # A server of IDENT's proto that acknowledges every call and sends nothing.
    stand_in = FakePeers({Agency.IDENT: f"127.0.0.1:{free_port()}"})
    await stand_in.start()
    junit = tmp_path / "stand-in.xml"
    try:
        peers = [f"--peer={peer}=127.0.0.1:{free_port()}" for peer in Agency if peer != "ident"]
        code, out, err = await _scfed(
            "conformance",
            "ident",
            f"--target={stand_in.addresses[Agency.IDENT]}",
            "--deadline=1",
            "--quiet=0.3",
            f"--junit={junit}",
            *peers,
            env={"SCFED_TLS": "off"},
        )
    finally:
        await stand_in.stop()
    assert code == 1, out + err
    lines = out.splitlines()
    failed = lines[lines.index(f"FAIL {NO_MATCH_IDR}") + 1]
    assert "no IDR for the search reached cjis_iafis.DeliverIdr within 1 s" in failed
    names = {
        c.get("name") for c in ElementTree.parse(junit).getroot() if c.find("failure") is not None
    }
    assert NO_MATCH_IDR in names
    assert f"SKIP {EVERY_RPC}" in lines


async def test_a_missing_certificate_is_named_with_the_way_to_make_it(tmp_path: Path) -> None:
    code, out, err = await _scfed(
        "conformance", "ident", "--target=127.0.0.1:1", f"--tls-dir={tmp_path / 'none'}"
    )
    assert code == 2, out + err
    assert f"{tmp_path / 'none' / 'ca.pem'} is missing" in err
    assert "scfed certs init" in err and "--no-tls" in err


async def test_a_target_nobody_serves_and_a_bad_option_are_named(tmp_path: Path) -> None:
    code, out, err = await _scfed(
        "conformance",
        "ident",
        f"--target=127.0.0.1:{free_port()}",
        "--connect-timeout=1",
        "--no-tls",
        *[f"--peer={peer}=127.0.0.1:{free_port()}" for peer in Agency if peer != "ident"],
    )
    assert code == 2 and "no gRPC server answered at 127.0.0.1:" in err and "within 1 s" in err, (
        out + err
    )
    code, out, err = await _scfed("conformance", "idnet", "--target=127.0.0.1:1")
    assert code == 2 and "unknown agency 'idnet'" in err, err
    code, out, err = await _scfed("conformance", "ident", "--target=localhost")
    assert code == 2 and "expected HOST:PORT" in err, err
