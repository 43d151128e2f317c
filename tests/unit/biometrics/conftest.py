"""Fixtures of the biometric tests: the synthetic fingerprint model and a population."""

from __future__ import annotations

import numpy as np
import pytest

from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import GALLERY, Fingers


@pytest.fixture(scope="module")
def prints() -> SyntheticFingerprints:
    """The default synthetic fingerprint model."""
    return SyntheticFingerprints()


@pytest.fixture(scope="module")
def people(prints: SyntheticFingerprints) -> Fingers:
    """Identity templates of a small population."""
    return prints.new_people(GALLERY, np.random.default_rng(1))
