"""A threshold that holds its FPIR as the gallery grows: the impostor tail model, measured on
simulated galleries with synthetic non-mated searches."""

from __future__ import annotations

import numpy as np
import pytest

from services.biometrics.calibration import Calibration, ImpostorTail, sample_impostor_tail
from services.biometrics.params import FINGERS
from services.biometrics.template import TenprintBatch
from services.world.tenprints import SyntheticFingerprints

# Galleries simulated, and the target FPIR: 5,000 searches give about 50 false positives at
# 1 %, enough to tell a factor 1.5 (a lower target would need ten times the searches).
SMALL, LARGE = 2_000, 20_000
SEARCHES = 5_000
TARGET = 0.01


def _population(prints: SyntheticFingerprints, n: int, rng: np.random.Generator) -> TenprintBatch:
    people = prints.new_people(n, rng)
    return prints.capture_many(people, rng, missing=prints.amputations(n, rng))


def _best_scores(gallery: TenprintBatch, probes: TenprintBatch) -> np.ndarray:
    """Each probe's best fused score over the gallery (exact, as one matrix product)."""
    cosines = gallery.vectors.reshape(len(gallery), -1) @ probes.vectors.reshape(len(probes), -1).T
    common = gallery.present.astype(np.float32) @ probes.present.astype(np.float32).T
    scores = cosines / np.sqrt(np.maximum(common, 1.0) * FINGERS)
    scores[common == 0] = 0.0
    best: np.ndarray = scores.max(axis=0)
    return best


@pytest.fixture(scope="module")
def simulated() -> dict[str, object]:
    """A gallery of LARGE identities (its first SMALL a smaller one), the tail fitted from the
    gallery's own pairs, and the best score of SEARCHES strangers on each gallery."""
    prints = SyntheticFingerprints()
    rng = np.random.default_rng(2026)
    gallery = _population(prints, LARGE, rng)
    strangers = _population(prints, SEARCHES, rng)
    tail = sample_impostor_tail(
        gallery.vectors, gallery.present, rng=np.random.default_rng(5), probes=500
    )
    small = TenprintBatch(
        vectors=gallery.vectors[:SMALL],
        present=gallery.present[:SMALL],
        quality=gallery.quality[:SMALL],
    )
    return {
        "tail": tail,
        SMALL: _best_scores(small, strangers),
        LARGE: _best_scores(gallery, strangers),
    }


def _scores() -> np.ndarray:
    """Scores drawn from a Gaussian of sd 0.07, a light tail like the fused score's."""
    scores: np.ndarray = np.random.default_rng(9).normal(0.07, 0.07, 2_000_000)
    return scores


def _tail() -> ImpostorTail:
    """A tail fitted on all of `_scores`."""
    scores = _scores()
    return ImpostorTail.fit(scores, scores.size)


def test_the_threshold_for_a_target_fpir_rises_with_the_gallery() -> None:
    tail = _tail()
    thresholds = [tail.threshold_for(0.001, n) for n in (10, 1_000, 100_000, 10_000_000)]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == 4
    for n in (1_000, 100_000, 10_000_000):
        assert tail.fpir_at(tail.threshold_for(0.001, n), n) == pytest.approx(0.001, rel=1e-6)


def test_the_fitted_tail_follows_the_sampled_scores_and_bends_down() -> None:
    tail = _tail()
    assert tail.slope < 0 and tail.curvature < 0
    ranked = np.sort(_scores())[::-1]
    for fmr in (1e-4, 1e-5):
        assert tail.score_at_fmr(fmr) == pytest.approx(
            ranked[int(fmr * ranked.size) - 1], abs=0.003
        )
    # Given only its top share, the fit is the same.
    top = ImpostorTail.fit(ranked[:5000], ranked.size)
    assert top == tail
    assert tail.score_at_fmr(0.5) == tail.u
    assert ImpostorTail.from_array(tail.to_array()) == tail


def test_a_tail_needs_enough_comparisons() -> None:
    with pytest.raises(ValueError, match="too few"):
        ImpostorTail.fit(np.linspace(0, 1, 1000), 1000)


def test_the_models_threshold_holds_the_target_fpir_on_simulated_galleries(
    simulated: dict[str, object],
) -> None:
    tail = simulated["tail"]
    assert isinstance(tail, ImpostorTail)
    for size in (SMALL, LARGE):
        best = simulated[size]
        assert isinstance(best, np.ndarray)
        measured = float(np.mean(best >= tail.threshold_for(TARGET, size)))
        assert TARGET / 1.5 <= measured <= TARGET * 1.5, (size, measured)


def test_a_threshold_fixed_at_a_smaller_gallery_misses_the_target_on_a_larger_one(
    simulated: dict[str, object],
) -> None:
    small, large = simulated[SMALL], simulated[LARGE]
    assert isinstance(small, np.ndarray) and isinstance(large, np.ndarray)
    fixed = Calibration.from_impostor_scores(small).threshold_for(TARGET)
    assert float(np.mean(small >= fixed)) <= TARGET
    assert float(np.mean(large >= fixed)) > 1.5 * TARGET
