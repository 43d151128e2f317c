"""The committed generated code is exactly what the protos produce, and the protos say what
each RPC refuses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generated(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in sorted(tree.rglob("*_pb2*.py*"))
        if p.suffix in (".py", ".pyi")
    }


def test_regenerating_the_stubs_changes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    fresh = _generated(tmp_path / "scfed")
    committed = _generated(ROOT / "scfed")
    assert sorted(fresh) == sorted(committed), "generated files differ in name"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert not changed, f"run scripts/gen_protos.sh: stale generated code in {changed}"


@pytest.mark.parametrize("proto", sorted((ROOT / "proto").rglob("*.proto")), ids=lambda p: p.stem)
def test_every_rpc_documents_its_errors(proto: Path) -> None:
    text = proto.read_text()
    for match in re.finditer(r"((?:\s*//[^\n]*\n)+)\s*rpc (\w+)", text):
        comment, rpc = match.group(1), match.group(2)
        if rpc in ("Info",):
            continue
        assert re.search(r"[A-Z_]{6,}:", comment), f"{proto.name} {rpc}: no status documented"


def test_every_service_package_is_versioned() -> None:
    for proto in (ROOT / "proto").rglob("*.proto"):
        package = re.search(r"^package (\S+);", proto.read_text(), re.M)
        assert package is not None
        parts = proto.relative_to(ROOT / "proto").parts
        assert package.group(1) == ".".join(parts[:-1]), f"{proto}: package/path mismatch"
        assert parts[-2] == "v1"
