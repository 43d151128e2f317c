"""Target false-positive identification rates (FPIR) and the thresholds that give them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .params import DEFAULT_OPERATING_POINTS
from .template import FloatArray


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
