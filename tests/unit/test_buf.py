"""The contracts pass `buf lint` and `buf format`, and `buf breaking` against the last released
contracts refuses a breaking change.

buf comes with the dev extra (buf-bin); where the dev extra or CI is present these tests are
required, never skipped.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from scfed.common.v1 import common_pb2

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BASELINE = ROOT / "proto" / "baseline" / f"scfed-{VERSION}.binpb"


def _buf_installed() -> bool:
    try:
        importlib.metadata.version("buf-bin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def buf() -> str:
    """The buf executable: the one beside this interpreter (the dev extra), else on PATH."""
    beside = Path(sys.executable).with_name("buf")
    found = str(beside) if beside.exists() else shutil.which("buf")
    if found is None:
        if os.environ.get("CI") or _buf_installed():
            pytest.fail("buf is required here: install the dev extra (buf-bin)")
        pytest.skip("buf is not installed (pip install -e '.[dev]')")
    return found


def _run(buf: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [buf, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_buf_lint_passes_with_the_configured_exceptions(buf: str) -> None:
    result = _run(buf, "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_protos_are_buf_formatted(buf: str) -> None:
    result = _run(buf, "format", "--diff", "--exit-code")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contracts_do_not_break_the_last_release(buf: str) -> None:
    result = _run(buf, "breaking", "--against", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_only_baseline_is_the_current_versions_and_ci_checks_against_it() -> None:
    assert sorted(p.name for p in (ROOT / "proto" / "baseline").iterdir()) == [BASELINE.name]
    against = f".venv/bin/buf breaking --against {BASELINE.relative_to(ROOT)}\n"
    assert against in (ROOT / "scripts" / "test.sh").read_text()


def _copy_contracts(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    return tmp_path / "proto" / "scfed" / "common" / "v1" / "common.proto"


def test_buf_breaking_refuses_a_deleted_field(buf: str, tmp_path: Path) -> None:
    common = _copy_contracts(tmp_path)
    text = common.read_text()
    field = "  google.protobuf.Timestamp determined_at = 14;\n"
    assert field in text
    common.write_text(text.replace(field, ""))
    result = _run(buf, "breaking", "--against", str(BASELINE), cwd=tmp_path)
    assert result.returncode != 0
    assert 'field "14" with name "determined_at" on message "Iar" was deleted' in result.stdout


def test_buf_breaking_refuses_a_renamed_rpc(buf: str, tmp_path: Path) -> None:
    common = _copy_contracts(tmp_path)
    text = common.read_text()
    common.write_text(text.replace("rpc GetJournal(", "rpc ReadJournal("))
    result = _run(buf, "breaking", "--against", str(BASELINE), cwd=tmp_path)
    assert result.returncode != 0
    assert '"GetJournal" on service "Journal" was deleted' in result.stdout


def test_buf_lint_holds_a_new_package_to_every_rule(buf: str, tmp_path: Path) -> None:
    _copy_contracts(tmp_path)
    v2 = tmp_path / "proto" / "scfed" / "common" / "v2"
    v2.mkdir()
    (v2 / "common.proto").write_text(
        'syntax = "proto3";\n\npackage scfed.common.v2;\n\n'
        "message Ping {}\n\nservice Journal {\n  rpc Echo(Ping) returns (Ping);\n}\n"
    )
    result = _run(buf, "lint", "--error-format=json", cwd=tmp_path)
    assert result.returncode != 0
    broken = {
        (finding["path"], finding["type"])
        for finding in map(json.loads, result.stdout.splitlines())
    }
    assert broken == {
        ("proto/scfed/common/v2/common.proto", rule)
        for rule in (
            "SERVICE_SUFFIX",
            "RPC_REQUEST_STANDARD_NAME",
            "RPC_RESPONSE_STANDARD_NAME",
            "RPC_REQUEST_RESPONSE_UNIQUE",
        )
    }


def test_iar_reserves_the_deleted_field_office() -> None:
    iar = descriptor_pb2.DescriptorProto()
    common_pb2.Iar.DESCRIPTOR.CopyToProto(iar)
    assert [(r.start, r.end) for r in iar.reserved_range] == [(15, 16)]
    assert list(iar.reserved_name) == ["field_office"]
