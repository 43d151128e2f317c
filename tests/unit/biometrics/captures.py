"""Synthetic people and captures the biometric tests share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.biometrics.template import TenprintTemplate, tenprint_from_proto
from services.world.tenprints import SyntheticFingerprints

# The population the engine and benchmark tests enrol.
GALLERY = 600
Fingers = npt.NDArray[np.float64]


def new_people(prints: SyntheticFingerprints, n: int, seed: int = 11) -> list[Fingers]:
    """Identity templates of `n` people, one by one from one seed."""
    rng = np.random.default_rng(seed)
    return [prints.new_fingers(rng) for _ in range(n)]


def capture_template(
    prints: SyntheticFingerprints,
    fingers: Fingers,
    seed: int,
    *,
    missing: frozenset[int] = frozenset(),
    quality: int | None = 90,
) -> TenprintTemplate:
    """A fresh capture of `fingers`, validated as it arrives on the wire."""
    tenprint = prints.capture(
        fingers, np.random.default_rng(seed), missing=missing, quality=quality, unprintable_rate=0.0
    )
    return tenprint_from_proto(tenprint)
