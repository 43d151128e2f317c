"""Settings of the services that search prints, and what importing settings and tables loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.biometrics.config import GallerySettings, MatchSettings
from services.biometrics.params import DEFAULT_FPIR, DEFAULT_THRESHOLD, IndexParams
from services.cjis_iafis.config import CjisSettings
from services.ident.config import IdentSettings
from services.sib.config import SibSettings

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("numpy", "hnswlib")
SEARCHERS = (SibSettings, CjisSettings, IdentSettings)


@pytest.fixture(autouse=True)
def no_biometric_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No threshold or index setting from the shell that runs the tests leaks into them."""
    leaking = [n for n in os.environ if n.upper().endswith("MATCH_THRESHOLD") or "_INDEX_" in n]
    for name in leaking:
        monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(
    "module",
    [
        "services.runtime.config",
        "services.lesc.config",
        "services.ice_field.config",
        # The agencies that search prints need only the engine's parameters to read settings.
        "services.biometrics.params",
        "services.biometrics.config",
        "services.sib.config",
        "services.cjis_iafis.config",
        "services.ident.config",
        # Nor their tables, the gallery's change log among them.
        "services.biometrics.changes",
        "services.cjis_iafis.models",
        "services.ident.models",
    ],
)
def test_settings_and_tables_load_neither_numpy_nor_hnswlib(module: str) -> None:
    probe = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == [], f"importing {module} loads {done.stdout.strip()}"


def test_the_three_agencies_that_search_prints_share_one_match_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for settings in SEARCHERS:
        assert issubclass(settings, MatchSettings)
        assert settings().match_threshold == DEFAULT_THRESHOLD
    monkeypatch.setenv("SCFED_MATCH_THRESHOLD", "0.5")
    assert [s().match_threshold for s in SEARCHERS] == [0.5, 0.5, 0.5]
    monkeypatch.setenv("SCFED_MATCH_THRESHOLD", "1.0")
    for settings in SEARCHERS:
        with pytest.raises(ValidationError, match="match_threshold"):
            settings()


def test_a_gallery_asks_for_the_engines_index_parameters_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for settings in (CjisSettings, IdentSettings):
        assert issubclass(settings, GallerySettings)
    assert IdentSettings().index_params() == IndexParams()
    monkeypatch.setenv("SCFED_INDEX_EF", "8")
    # ef is raised to the proposals rescored.
    assert CjisSettings().index_params() == IndexParams(ef=IndexParams.rescore)


def test_a_gallery_follows_its_size_unless_a_threshold_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for settings in (CjisSettings, IdentSettings):
        assert settings().fixed_threshold() is None
        assert settings().target_fpir == DEFAULT_FPIR
    monkeypatch.setenv("SCFED_IDENT_TARGET_FPIR", "0.01")
    assert IdentSettings().target_fpir == 0.01 and IdentSettings().fixed_threshold() is None
    monkeypatch.setenv("SCFED_IDENT_MATCH_THRESHOLD", "0.5")
    assert IdentSettings().fixed_threshold() == 0.5
    assert CjisSettings().fixed_threshold() is None
    monkeypatch.setenv("SCFED_IDENT_TARGET_FPIR", "1.5")
    with pytest.raises(ValidationError, match="target_fpir"):
        IdentSettings()
