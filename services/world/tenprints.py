"""A synthetic tenprint model: identity vectors per finger and noisy captures of them.

Each finger of a person has a fixed identity vector: an isotropic Gaussian draw pushed through
a mixing matrix with a decaying spectrum (singular values from 1.0 down to 0.25), so the feature
space is not isotropic, then normalised to unit length. A capture is one impression of every
finger: the identity vector plus noise drawn through the same mixing matrix, renormalised. The
noise grows as the impression quality falls, calibrated against `match_score` of
`services.runtime.biometrics` so that two captures of the same ten fingers score about 0.91 at
good quality (80-100) and about 0.66 when both are at the worst quality, 20 (above
DEFAULT_THRESHOLD, 0.55), while two different people score about 0 (spread about 0.07).

When no quality is asked for, a capture session draws one from this mix (operator, skin and
scanner condition affect the whole session), and each finger varies a little around it:

| band | share | quality |
|------|-------|---------|
| good | 80 %  | 80-100  |
| fair | 15 %  | 50-79   |
| poor | 5 %   | 20-49   |
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2
from services.runtime.biometrics import FINGERS, TEMPLATE_DIM

DEFAULT_MODEL_SEED = 2009
# Singular values of the mixing matrix, geometrically from the first to the last.
SPECTRUM_TOP = 1.0
SPECTRUM_BOTTOM = 0.25
# (share, lowest, highest) of each quality band when the session quality is drawn.
QUALITY_MIX: tuple[tuple[float, int, int], ...] = ((0.80, 80, 100), (0.15, 50, 79), (0.05, 20, 49))
# Each finger's quality varies this much (either way) around the session quality.
FINGER_QUALITY_JITTER = 4
MIN_QUALITY = 20
MAX_QUALITY = 100
# Noise length relative to the unit identity vector, at quality 100 and at quality 20.
NOISE_AT_BEST = 0.26
NOISE_AT_WORST = 0.72

FloatArray = npt.NDArray[np.float64]


def noise_level(quality: int) -> float:
    """Expected noise length (relative to the unit identity vector) of one impression."""
    q = min(max(quality, MIN_QUALITY), MAX_QUALITY)
    worse = (MAX_QUALITY - q) / (MAX_QUALITY - MIN_QUALITY)
    return NOISE_AT_BEST + (NOISE_AT_WORST - NOISE_AT_BEST) * worse


class SyntheticFingerprints:
    """The synthetic feature extractor: one fixed mixing matrix from a model seed."""

    def __init__(self, seed: int = DEFAULT_MODEL_SEED, *, dim: int = TEMPLATE_DIM) -> None:
        if dim < 2:
            raise ValueError(f"template dimension must be at least 2, got {dim}")
        self.seed = seed
        self.dim = dim
        rng = np.random.default_rng(seed)
        left, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        right, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.spectrum: FloatArray = np.geomspace(SPECTRUM_TOP, SPECTRUM_BOTTOM, dim)
        self.mixing: FloatArray = (left * self.spectrum) @ right.T
        # Scales mixed Gaussian noise to unit expected length.
        self._noise_scale = 1.0 / float(np.sqrt(np.sum(self.spectrum**2)))

    def __repr__(self) -> str:
        return f"SyntheticFingerprints(seed={self.seed}, dim={self.dim})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SyntheticFingerprints):
            return NotImplemented
        return (self.seed, self.dim) == (other.seed, other.dim)

    def __hash__(self) -> int:
        return hash((SyntheticFingerprints, self.seed, self.dim))

    def new_fingers(self, rng: np.random.Generator) -> FloatArray:
        """The identity vectors of a new person's ten fingers, shape (10, dim), unit rows."""
        raw = rng.standard_normal((FINGERS, self.dim)) @ self.mixing.T
        unit: FloatArray = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        return unit

    def draw_quality(self, rng: np.random.Generator) -> int:
        """A capture session's quality, drawn from QUALITY_MIX."""
        pick = float(rng.random())
        for share, low, high in QUALITY_MIX:
            if pick < share:
                return int(rng.integers(low, high + 1))
            pick -= share
        _, low, high = QUALITY_MIX[-1]
        return int(rng.integers(low, high + 1))

    def capture(
        self,
        fingers: FloatArray,
        rng: np.random.Generator,
        *,
        missing: frozenset[int] = frozenset(),
        quality: int | None = None,
    ) -> common_pb2.Tenprint:
        """A fresh impression of each finger; `missing` FGPs (1-based) are sent amputated."""
        if fingers.shape != (FINGERS, self.dim):
            raise ValueError(
                f"fingers must have shape ({FINGERS}, {self.dim}), got {fingers.shape}"
            )
        if any(not 1 <= pos <= FINGERS for pos in missing):
            raise ValueError(
                f"missing finger positions must be 1..{FINGERS}, got {sorted(missing)}"
            )
        if quality is not None and not 1 <= quality <= MAX_QUALITY:
            raise ValueError(f"quality must be 1..{MAX_QUALITY}, got {quality}")
        # Every draw happens whatever is missing, so a capture consumes the rng the same way.
        if quality is None:
            session = self.draw_quality(rng)
            jitter = rng.integers(-FINGER_QUALITY_JITTER, FINGER_QUALITY_JITTER + 1, FINGERS)
            qualities = np.clip(session + jitter, MIN_QUALITY, MAX_QUALITY)
        else:
            qualities = np.full(FINGERS, quality)
        noise = rng.standard_normal((FINGERS, self.dim)) @ self.mixing.T * self._noise_scale
        captures = []
        for i in range(FINGERS):
            position = i + 1
            if position in missing:
                captures.append(
                    common_pb2.FingerCapture(
                        position=position, status=common_pb2.FINGER_STATUS_AMPUTATED, quality=0
                    )
                )
                continue
            q = int(qualities[i])
            impression = fingers[i] + noise_level(q) * noise[i]
            impression /= np.linalg.norm(impression)
            captures.append(
                common_pb2.FingerCapture(
                    position=position,
                    status=common_pb2.FINGER_STATUS_PRESENT,
                    template=impression.astype(np.float32).tolist(),
                    quality=q,
                )
            )
        return common_pb2.Tenprint(fingers=captures)
