"""The distribution installs one top-level import package, `scfed`, and leaves `services` alone.

In a checkout the folder services/ is the package `services`; installed, pyproject.toml maps it
to `scfed.services`. Both work because code inside services/ imports its own modules relatively.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_folders() -> set[str]:
    """Every folder that holds modules (an __init__.py) or package data (LESC's .toml tables)."""
    found = set()
    for top, pattern in (
        ("scfed", "__init__.py"),
        ("services", "__init__.py"),
        ("services", "*.toml"),
    ):
        for path in (ROOT / top).rglob(pattern):
            parts = path.parent.relative_to(ROOT).parts
            found.add(".".join(parts if top == "scfed" else ("scfed", *parts)))
    return found


def test_the_package_list_names_every_package_folder() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _package_folders()
    assert setuptools["package-dir"] == {"scfed.services": "services"}
    assert PYPROJECT["project"]["scripts"]["scfed"] == "scfed.services.cli.main:app"


def _absolute_self_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            for name in names
            if name == "services" or name.startswith("services.")
        ]
    return found


def test_code_inside_services_imports_its_own_modules_relatively() -> None:
    offenders = [
        hit for p in sorted((ROOT / "services").rglob("*.py")) for hit in _absolute_self_imports(p)
    ]
    assert offenders == []


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_a_users_own_services_package_and_scfed_live_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "__init__.py").write_text("OWNER = 'the user'\n")
    result = _run(
        "import services, scfed.services.federation as f; "
        "print(services.OWNER, f.PACKAGE, f.Agency.LESC.profile.module)",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["the", "user", "scfed.services", "scfed.services.lesc"]


def test_outside_a_checkout_there_is_no_top_level_services(tmp_path: Path) -> None:
    result = _run("import importlib.util; print(importlib.util.find_spec('services'))", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_the_installed_command_runs_from_anywhere(tmp_path: Path) -> None:
    scfed = Path(sys.executable).with_name("scfed")
    if not scfed.exists():
        pytest.skip("the project is not installed in this interpreter's environment")
    result = subprocess.run(
        [str(scfed), "classify", "1313", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"level"' in result.stdout


def test_the_wheel_holds_one_top_level_package_with_its_data(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("scfed-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "scfed",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    for needed in (
        "scfed/services/cli/main.py",
        "scfed/services/lesc/data/appendix_a_moa.toml",
        "scfed/services/lesc/data/status_rules.toml",
        "scfed/sib/v1/sib_pb2.py",
        "scfed/py.typed",
        *(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto" / "scfed").rglob("*.proto")),
    ):
        assert needed in names
    info = wheel.name.split("-py3")[0] + ".dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert f"Version: {PYPROJECT['project']['version']}" in metadata


def test_the_version_has_its_changelog_entry() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## {PYPROJECT['project']['version']}\n" in changelog
