"""The engine's numbers and index parameters: what settings and other code need without numpy."""

from __future__ import annotations

from dataclasses import dataclass, replace

FINGERS = 10
TEMPLATE_DIM = 32
MODEL_VERSION = "scfed-synthetic-tenprint-2"
# Values of each finger's template that go into the coarse HNSW vector.
COARSE_PER_FINGER = 8
# How the coarse vector is made; a saved index made another way is stale.
COARSE_VERSION = "first8-centred-1"
# Identities whose coarse values give the per-finger centre (learned once the gallery has them).
CENTRE_SAMPLE = 10_000
# Thresholds at target FPIRs, from a calibration of non-mated searches against a gallery of
# 100,000 (scfed bench biometrics); the default decision threshold is the one at FPIR 0.1 %.
DEFAULT_OPERATING_POINTS: dict[float, float] = {
    1e-4: 0.475,
    1e-3: 0.464,
    1e-2: 0.436,
    1e-1: 0.405,
}
DEFAULT_FPIR = 1e-3
# A fixed threshold: the one a service that does not follow its gallery's size decides with.
DEFAULT_THRESHOLD = DEFAULT_OPERATING_POINTS[DEFAULT_FPIR]
# The impostor tail a gallery decides with until it has fitted its own: calibration's
# ImpostorTail of single comparisons (u, fmr_u, slope, curvature, comparisons), fitted by
# `sample_impostor_tail` on 2,000 x 200,000 pairs of a synthetic gallery of 200,000 (seed 1;
# `python -m services.biometrics.bench.fpir --reference` fits it again).
REFERENCE_IMPOSTOR_TAIL: tuple[float, float, float, float, int] = (
    0.2969958,
    0.001,
    -48.397795,
    -126.142785,
    399_998_000,
)
# The highest fused score one finger alone can reach (a cosine of 1 over sqrt(1 x 10)): a
# threshold that follows the gallery never goes below it, so a match always needs two fingers.
LONE_FINGER_MAX: float = FINGERS**-0.5
# A gallery fits its own impostor tail, from TAIL_SEARCHES searches by its own members, once it
# holds TAIL_FIT_MIN identities, and again each time it has doubled since. 20,000 searches fit
# the tail down to FPIR 0.05 %, so 0.1 % is read inside the fit (5,000, which extrapolated,
# gave 0.056 % for a target of 0.1 % at 100,000).
TAIL_FIT_MIN = 10_000
TAIL_SEARCHES = 20_000
# The threshold is computed again when the gallery size moves by more than this share from the
# size it was computed for.
THRESHOLD_STEP = 0.01


@dataclass(frozen=True)
class IndexParams:
    """HNSW parameters (chosen by measurement: see README, Biometrics)."""

    m: int = 32
    ef_construction: int = 100
    ef: int = 512
    rescore: int = 32

    def searching(self, *, ef: int | None = None, rescore: int | None = None) -> IndexParams:
        """These parameters with another search breadth and proposals rescored (None keeps
        the current one); ef is raised to `rescore` when lower, as hnswlib searches with at
        least k."""
        new_rescore = self.rescore if rescore is None else rescore
        new_ef = self.ef if ef is None else ef
        if new_rescore < 1 or new_ef < 1:
            raise ValueError(f"ef and rescore must be at least 1, got {new_ef} and {new_rescore}")
        return replace(self, ef=max(new_ef, new_rescore), rescore=new_rescore)
