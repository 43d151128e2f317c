"""A synthetic tenprint model: ten finger identities per person and noisy captures of them.

Each finger of a person has a pattern class (arch, tented arch, left loop, right loop, whorl),
drawn from per-hand priors (loops lean towards the little finger: right loops on the right
hand, left loops on the left). Its identity template is `0.5 * class centroid + individual
component`, where the individual component is a Gaussian draw pushed through a mixing matrix
with a decaying spectrum (1.0 down to 0.2), so the feature space is not isotropic; the sum is
normalised to unit length. The extractor emits features in decreasing-variance order, as a
PCA-projected extractor does: the first values of a template carry the most information, which
the engine's coarse search vector relies on. Two fingers of the same class therefore look more
alike than two of different classes, which gives impostor scores a realistic right tail.

A capture is one impression of every finger: the identity template plus noise drawn through the
same mixing matrix, scaled by the impression's quality, renormalised. About 1 % of fingers are
unprintable at any capture (an empty slot), and amputated fingers are empty slots at every
capture: never a zero vector. When no quality is asked for, a capture session draws one from
this mix (operator, skin and scanner condition affect the whole session), and each finger
varies a little around it:

| band | share | quality |
|------|-------|---------|
| good | 80 %  | 80-100  |
| fair | 15 %  | 50-79   |
| poor | 5 %   | 20-49   |

`new_people`, `amputations` and `capture_many` are the vectorised forms the benchmark uses to
make a million people in seconds; `new_fingers` and `capture` make one person or one wire
tenprint for the federation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2

from ..biometrics.params import FINGERS, TEMPLATE_DIM
from ..biometrics.template import TenprintBatch

DEFAULT_MODEL_SEED = 2009
# Singular values of the mixing matrix, geometrically from the first to the last.
SPECTRUM_TOP = 1.0
SPECTRUM_BOTTOM = 0.2
# Weight of the pattern-class centroid in a finger's identity template.
CLASS_WEIGHT = 0.5
PATTERN_CLASSES = ("arch", "tented arch", "left loop", "right loop", "whorl")
# Priors over PATTERN_CLASSES for a finger of the right hand (FGP 1-5) and of the left (6-10).
RIGHT_HAND_PRIOR = (0.05, 0.04, 0.03, 0.58, 0.30)
LEFT_HAND_PRIOR = (0.05, 0.04, 0.58, 0.03, 0.30)
# (share, lowest, highest) of each quality band when the session quality is drawn.
QUALITY_MIX: tuple[tuple[float, int, int], ...] = ((0.80, 80, 100), (0.15, 50, 79), (0.05, 20, 49))
# Each finger's quality varies this much (either way) around the session quality.
FINGER_QUALITY_JITTER = 4
MIN_QUALITY = 20
MAX_QUALITY = 100
# Share of fingers that cannot be printed at one capture (an empty slot).
UNPRINTABLE_RATE = 0.01
# Share of people with one or two amputated fingers.
AMPUTATION_RATE = 0.02
# Noise length relative to the unit identity vector, at quality 100 and at quality 20.
NOISE_AT_BEST = 0.30
NOISE_AT_WORST = 0.80

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def noise_level(quality: int) -> float:
    """Expected noise length (relative to the unit identity vector) of one impression."""
    return float(_noise_levels(np.asarray([quality]))[0])


def _noise_levels(quality: npt.NDArray[np.integer]) -> FloatArray:
    q = np.clip(quality, MIN_QUALITY, MAX_QUALITY).astype(np.float64)
    worse = (MAX_QUALITY - q) / (MAX_QUALITY - MIN_QUALITY)
    levels: FloatArray = NOISE_AT_BEST + (NOISE_AT_WORST - NOISE_AT_BEST) * worse
    return levels


def _unit_rows(values: FloatArray) -> FloatArray:
    unit: FloatArray = values / np.linalg.norm(values, axis=-1, keepdims=True)
    return unit


class SyntheticFingerprints:
    """The synthetic feature extractor: mixing matrix and class centroids from a model seed."""

    def __init__(self, seed: int = DEFAULT_MODEL_SEED, *, dim: int = TEMPLATE_DIM) -> None:
        if dim < 2:
            raise ValueError(f"template dimension must be at least 2, got {dim}")
        self.seed = seed
        self.dim = dim
        rng = np.random.default_rng(seed)
        right, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.spectrum: FloatArray = np.geomspace(SPECTRUM_TOP, SPECTRUM_BOTTOM, dim)
        # Principal axes first: feature i has variance spectrum[i] ** 2.
        self.mixing: FloatArray = self.spectrum[:, None] * right.T
        self.centroids: FloatArray = _unit_rows(
            rng.standard_normal((len(PATTERN_CLASSES), dim)) @ self.mixing.T
        )
        self.class_priors: FloatArray = np.array(
            [RIGHT_HAND_PRIOR] * 5 + [LEFT_HAND_PRIOR] * 5, dtype=np.float64
        )
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

    def pattern_classes(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.int8]:
        """The pattern class of each finger of `n` people, shape (n, 10), by hand priors."""
        cumulative = np.cumsum(self.class_priors, axis=1)
        draws = rng.random((n, FINGERS))
        classes = (draws[:, :, None] > cumulative[None, :, :]).sum(axis=2)
        result: npt.NDArray[np.int8] = np.minimum(classes, len(PATTERN_CLASSES) - 1).astype(np.int8)
        return result

    def new_people(self, n: int, rng: np.random.Generator) -> FloatArray:
        """The identity templates of `n` new people, shape (n, 10, dim), unit rows."""
        classes = self.pattern_classes(n, rng)
        individual = _unit_rows(rng.standard_normal((n, FINGERS, self.dim)) @ self.mixing.T)
        return _unit_rows(CLASS_WEIGHT * self.centroids[classes] + individual)

    def new_fingers(self, rng: np.random.Generator) -> FloatArray:
        """The identity templates of one new person's ten fingers, shape (10, dim)."""
        fingers: FloatArray = self.new_people(1, rng)[0]
        return fingers

    @staticmethod
    def amputations(n: int, rng: np.random.Generator) -> BoolArray:
        """Which fingers of `n` people are missing (True), shape (n, 10): about 2 % lack 1-2."""
        missing = np.zeros((n, FINGERS), dtype=bool)
        who = np.flatnonzero(rng.random(n) < AMPUTATION_RATE)
        first = rng.integers(0, FINGERS, who.size)
        second = rng.integers(0, FINGERS, who.size)
        two = rng.random(who.size) < 1 / 3
        missing[who, first] = True
        missing[who[two], second[two]] = True
        return missing

    def draw_qualities(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
        """Finger qualities of `n` capture sessions, shape (n, 10), from QUALITY_MIX."""
        shares = np.cumsum([share for share, _, _ in QUALITY_MIX])
        band = np.minimum(np.searchsorted(shares, rng.random(n), side="right"), len(shares) - 1)
        low = np.array([lo for _, lo, _ in QUALITY_MIX])[band]
        high = np.array([hi for _, _, hi in QUALITY_MIX])[band]
        session = low + np.floor(rng.random(n) * (high - low + 1)).astype(np.int64)
        jitter = rng.integers(-FINGER_QUALITY_JITTER, FINGER_QUALITY_JITTER + 1, (n, FINGERS))
        qualities: npt.NDArray[np.int64] = np.clip(
            session[:, None] + jitter, MIN_QUALITY, MAX_QUALITY
        )
        return qualities

    def draw_quality(self, rng: np.random.Generator) -> int:
        """A capture session's quality, drawn from QUALITY_MIX."""
        return int(self.draw_qualities(1, rng)[0, 0])

    def capture_many(
        self,
        fingers: FloatArray,
        rng: np.random.Generator,
        *,
        missing: BoolArray | None = None,
        quality: int | None = None,
        unprintable_rate: float = UNPRINTABLE_RATE,
    ) -> TenprintBatch:
        """Fresh impressions of `n` people's fingers (n, 10, dim); missing fingers are empty."""
        n = fingers.shape[0]
        if fingers.shape[1:] != (FINGERS, self.dim):
            raise ValueError(
                f"fingers must have shape (n, {FINGERS}, {self.dim}), got {fingers.shape}"
            )
        if quality is not None and not 1 <= quality <= MAX_QUALITY:
            raise ValueError(f"quality must be 1..{MAX_QUALITY}, got {quality}")
        if quality is None:
            qualities = self.draw_qualities(n, rng)
        else:
            qualities = np.full((n, FINGERS), quality, dtype=np.int64)
        noise = rng.standard_normal((n, FINGERS, self.dim)) @ self.mixing.T
        noise *= (self._noise_scale * _noise_levels(qualities))[:, :, None]
        impressions = _unit_rows(fingers + noise).astype(np.float32)
        present = rng.random((n, FINGERS)) >= unprintable_rate
        if missing is not None:
            present &= ~missing
        # A capture with no printable finger is retaken: keep its best finger.
        empty = ~present.any(axis=1)
        if missing is not None:
            retake = empty & ~missing.all(axis=1)
            present[retake] = ~missing[retake]
        else:
            present[empty] = True
        impressions[~present] = 0.0
        return TenprintBatch(
            vectors=impressions,
            present=present,
            quality=np.where(present, qualities, 0).astype(np.uint8),
        )

    def capture(
        self,
        fingers: FloatArray,
        rng: np.random.Generator,
        *,
        missing: frozenset[int] = frozenset(),
        quality: int | None = None,
        unprintable_rate: float = UNPRINTABLE_RATE,
    ) -> common_pb2.Tenprint:
        """A fresh wire impression; `missing` FGPs (1-based) are sent amputated."""
        if fingers.shape != (FINGERS, self.dim):
            raise ValueError(
                f"fingers must have shape ({FINGERS}, {self.dim}), got {fingers.shape}"
            )
        if any(not 1 <= pos <= FINGERS for pos in missing):
            raise ValueError(
                f"missing finger positions must be 1..{FINGERS}, got {sorted(missing)}"
            )
        mask = np.zeros((1, FINGERS), dtype=bool)
        for pos in missing:
            mask[0, pos - 1] = True
        batch = self.capture_many(
            fingers[None], rng, missing=mask, quality=quality, unprintable_rate=unprintable_rate
        )
        captures = []
        for i in range(FINGERS):
            position = i + 1
            if batch.present[0, i]:
                captures.append(
                    common_pb2.FingerCapture(
                        position=position,
                        status=common_pb2.FINGER_STATUS_PRESENT,
                        template=batch.vectors[0, i].tolist(),
                        quality=int(batch.quality[0, i]),
                    )
                )
            else:
                status = (
                    common_pb2.FINGER_STATUS_AMPUTATED
                    if position in missing
                    else common_pb2.FINGER_STATUS_UNPRINTABLE
                )
                captures.append(common_pb2.FingerCapture(position=position, status=status))
        return common_pb2.Tenprint(fingers=captures)
