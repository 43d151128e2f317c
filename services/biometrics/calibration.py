"""Target false-positive identification rates (FPIR) and the thresholds that give them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .params import DEFAULT_OPERATING_POINTS, FINGERS
from .template import BoolArray, FloatArray


@dataclass(frozen=True)
class Calibration:
    """Top impostor scores of non-mated searches, to turn a target FPIR into a threshold.

    FPIR is the share of non-mated searches whose best candidate scores at or above the
    threshold; the threshold for a target FPIR is the (1 - FPIR) quantile of those scores.
    """

    impostor_top_scores: FloatArray

    @classmethod
    def from_impostor_scores(cls, scores: Iterable[float] | FloatArray) -> Calibration:
        """A calibration from the best score of each non-mated search."""
        given = scores if isinstance(scores, np.ndarray) else list(scores)
        values = np.sort(np.asarray(given, dtype=np.float32))
        if values.size == 0:
            raise ValueError("a calibration needs at least one non-mated search")
        return cls(impostor_top_scores=values)

    def threshold_for(self, fpir: float) -> float:
        """The threshold whose FPIR on these searches is at most `fpir`."""
        if not 0 < fpir < 1:
            raise ValueError(f"target FPIR must be in (0, 1), got {fpir}")
        values = self.impostor_top_scores
        allowed = int(np.floor(fpir * values.size))
        # Scores strictly above the (allowed+1)-th highest may pass.
        edge = float(values[values.size - allowed - 1])
        return float(np.nextafter(np.float32(edge), np.float32(2.0)))

    def fpir_at(self, threshold: float) -> float:
        """The share of these non-mated searches that would pass `threshold`."""
        values = self.impostor_top_scores
        passed = values.size - int(np.searchsorted(values, threshold, side="left"))
        return passed / values.size


def threshold_for_fpir(fpir: float) -> float:
    """The default threshold for a target FPIR, interpolated in log FPIR between the
    operating points of the reference calibration (DEFAULT_OPERATING_POINTS)."""
    if not 0 < fpir < 1:
        raise ValueError(f"target FPIR must be in (0, 1), got {fpir}")
    points = sorted(DEFAULT_OPERATING_POINTS.items())
    xs = np.log10([p for p, _ in points])
    ys = [t for _, t in points]
    return float(np.interp(np.log10(fpir), xs, ys))


# Share of the sampled impostor comparisons above the start of the fitted tail (u).
TAIL_START_FMR = 1e-3
# The same share for the best scores of sampled non-mated searches.
SEARCH_TAIL_START = 0.1
# The fewest sampled scores at or above a point of the tail that the fit uses.
TAIL_MIN_COUNT = 10
# Fitted points of the tail per tenfold fall of its FMR.
TAIL_POINTS_PER_DECADE = 4


@dataclass(frozen=True)
class ImpostorTail:
    """The upper tail of sampled impostor scores, and the threshold it gives for a target FPIR
    at any gallery size.

    Each sampled score is the best impostor score over `per` gallery identities: one impostor
    comparison (`per` = 1), or the best candidate of a non-mated search of a gallery of `per`.
    FMR(t) is the share of such scores at or above t. Above `u`, the score that a share
    `fmr_u` of the sample reaches, it is modelled as

        ln FMR(t) = ln fmr_u + slope · (t - u) + curvature · (t - u)²

    with slope < 0 and curvature ≤ 0 (a tail that falls ever faster, as a sum of finger
    cosines does), fitted by weighted least squares on the sample's own tail. A non-mated 1:N
    search is a false positive when the best of its N impostor scores reaches the threshold;
    the best of N is the best of N / `per` independent blocks, so

        FPIR(t, N) = 1 - (1 - FMR(t))^(N / per),

    and the threshold for a target FPIR at N is the score whose FMR is
    1 - (1 - FPIR)^(per / N) ≈ FPIR · per / N: it rises with the gallery. Scaling from one
    block to many treats every probe alike, but some probes draw higher impostor scores than
    others (fingers of common pattern classes), so the further N is from `per`, the more the
    model overstates FPIR and the stricter the threshold: from single comparisons (`per` = 1)
    it holds at 100,000 but gives about a third of the target at 1,000,000. Hence a gallery
    calibrates on its own searches as it grows (the engine). Below `u` (targets looser than
    FMR `fmr_u`) the threshold stays at `u`, which holds the target with room to spare.
    """

    u: float
    fmr_u: float
    slope: float
    curvature: float
    comparisons: int
    per: int = 1

    @classmethod
    def fit(
        cls,
        top_scores: Iterable[float] | FloatArray,
        comparisons: int,
        *,
        start_share: float = TAIL_START_FMR,
        per: int = 1,
    ) -> ImpostorTail:
        """The tail of `comparisons` sampled scores, each the best over `per` identities,
        given (at least) the highest `start_share` of them in `top_scores`."""
        if per < 1:
            raise ValueError(f"each score stands for at least one identity, got {per}")
        given = top_scores if isinstance(top_scores, np.ndarray) else list(top_scores)
        ranked = -np.sort(-np.asarray(given, dtype=np.float64))
        start = int(np.ceil(start_share * comparisons))
        if start < 10 * TAIL_MIN_COUNT:
            raise ValueError(
                f"{comparisons} comparisons are too few to fit a tail: it needs at least "
                f"{int(np.ceil(10 * TAIL_MIN_COUNT / start_share))}"
            )
        if ranked.size < start:
            raise ValueError(f"the top {start} of {comparisons} scores are needed")
        u = float(ranked[start - 1])
        fmr_u = start / comparisons
        # Points at ranks falling geometrically from the start to TAIL_MIN_COUNT; a count of
        # r scores has a relative error of about 1/sqrt(r), hence the weights.
        decades = np.log10(start / TAIL_MIN_COUNT)
        steps = int(np.floor(decades * TAIL_POINTS_PER_DECADE)) + 1
        ranks = np.unique(
            np.round(start * 10.0 ** (-np.arange(steps) / TAIL_POINTS_PER_DECADE)).astype(int)
        )
        x = ranked[ranks - 1] - u
        y = np.log(ranks / start)
        weight = np.sqrt(ranks)
        above = x > 0
        x, y, weight = x[above], y[above], weight[above]
        design = np.stack([x, x**2], axis=1) * weight[:, None]
        (slope, curvature), *_ = np.linalg.lstsq(design, y * weight, rcond=None)
        if curvature > 0:
            # A tail that falls ever slower is not what a sum of cosines gives; keep the
            # straight (exponential) fit, which is the larger threshold at any FMR.
            slope = float(np.sum(weight**2 * x * y) / np.sum(weight**2 * x**2))
            curvature = 0.0
        if slope >= 0:
            raise ValueError("the sampled scores do not fall off above the start of the tail")
        return cls(
            u=u,
            fmr_u=fmr_u,
            slope=float(slope),
            curvature=float(curvature),
            comparisons=int(comparisons),
            per=int(per),
        )

    def fmr_at(self, threshold: float) -> float:
        """The modelled share of sampled scores (each the best over `per`) at or above
        `threshold`."""
        x = threshold - self.u
        if x <= 0:
            return self.fmr_u
        return float(self.fmr_u * np.exp(self.slope * x + self.curvature * x * x))

    def score_at_fmr(self, fmr: float) -> float:
        """The score whose modelled FMR is `fmr` (`u` for an FMR at or above `fmr_u`)."""
        if not 0 < fmr < 1:
            raise ValueError(f"FMR must be in (0, 1), got {fmr}")
        if fmr >= self.fmr_u:
            return self.u
        # Solves curvature·x² + slope·x = L for its positive root, in the form that stays
        # exact when the curvature is zero.
        fall = float(np.log(fmr / self.fmr_u))
        root = float(np.sqrt(self.slope**2 + 4 * self.curvature * fall))
        return self.u + 2 * fall / (self.slope - root)

    def fpir_at(self, threshold: float, gallery_size: int) -> float:
        """The modelled FPIR of `threshold` on a gallery of `gallery_size` identities."""
        blocks = gallery_size / self.per
        return float(-np.expm1(blocks * np.log1p(-self.fmr_at(threshold))))

    def threshold_for(self, fpir: float, gallery_size: int) -> float:
        """The threshold whose modelled FPIR on a gallery of `gallery_size` is `fpir`."""
        if not 0 < fpir < 1:
            raise ValueError(f"target FPIR must be in (0, 1), got {fpir}")
        blocks = max(1, gallery_size) / self.per
        return self.score_at_fmr(float(-np.expm1(np.log1p(-fpir) / blocks)))

    def to_array(self) -> npt.NDArray[np.float64]:
        """The storage form: u, fmr_u, slope, curvature, comparisons, per."""
        return np.array(
            [
                self.u,
                self.fmr_u,
                self.slope,
                self.curvature,
                float(self.comparisons),
                float(self.per),
            ],
            dtype=np.float64,
        )

    @classmethod
    def from_array(cls, values: npt.NDArray[np.float64]) -> ImpostorTail:
        """Reads the storage form back."""
        if values.shape != (6,):
            raise ValueError(f"a stored impostor tail has 6 values, got shape {values.shape}")
        u, fmr_u, slope, curvature, comparisons, per = (float(v) for v in values)
        return cls(
            u=u,
            fmr_u=fmr_u,
            slope=slope,
            curvature=curvature,
            comparisons=int(comparisons),
            per=int(per),
        )


def sample_impostor_tail(
    vectors: FloatArray,
    present: BoolArray,
    *,
    rng: np.random.Generator,
    rows: npt.NDArray[np.int64] | None = None,
    probes: int = 1000,
    others: int = 100_000,
    chunk: int = 16_384,
) -> ImpostorTail:
    """The impostor tail of a gallery (n, 10, dim), from its own tenprints: `probes` of them
    drawn at random, each scored against up to `others` others drawn at random (never
    against itself), exactly, with the fused score. `rows` limits the draw to those rows
    (the live ones of an index with deletions).

    The gallery's identities are distinct people (a gallery keeps one identity per person),
    so every pair is an impostor pair.
    """
    pool = np.arange(vectors.shape[0]) if rows is None else rows
    probe_rows = np.sort(rng.choice(pool, size=min(probes, pool.size), replace=False))
    other_rows = np.sort(rng.choice(pool, size=min(others, pool.size), replace=False))
    flat = vectors.reshape(vectors.shape[0], -1)
    probe_flat = flat[probe_rows].T.copy()
    probe_present = present[probe_rows].astype(np.float32).T.copy()
    comparisons = probe_rows.size * other_rows.size - int(np.isin(probe_rows, other_rows).sum())
    keep = int(np.ceil(TAIL_START_FMR * comparisons))
    kept: list[FloatArray] = []
    for start in range(0, other_rows.size, chunk):
        block = other_rows[start : start + chunk]
        cosines = flat[block] @ probe_flat
        common = present[block].astype(np.float32) @ probe_present
        scores = (cosines / np.sqrt(np.maximum(common, 1.0) * FINGERS)).astype(np.float32)
        scores[common == 0] = 0.0
        scores[block[:, None] == probe_rows[None, :]] = -np.inf
        values = scores.ravel()
        if values.size > keep:
            values = np.partition(values, values.size - keep)[-keep:]
        kept.append(values)
    return ImpostorTail.fit(np.concatenate(kept), comparisons)
