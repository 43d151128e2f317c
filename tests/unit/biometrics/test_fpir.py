"""A threshold that holds its FPIR as the gallery grows: the impostor tail model, measured on
simulated galleries with synthetic non-mated searches."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from services.biometrics.calibration import Calibration, ImpostorTail, sample_impostor_tail
from services.biometrics.engine import BiometricEngine
from services.biometrics.params import DEFAULT_FPIR, FINGERS, LONE_FINGER_MAX, IndexParams
from services.biometrics.template import TenprintBatch
from services.world.tenprints import SyntheticFingerprints

# Galleries simulated, and the target FPIR: 5,000 searches give about 50 false positives at
# 1 %, enough to tell a factor 1.5 (a lower target would need ten times the searches).
SMALL, LARGE = 2_000, 20_000
SEARCHES = 5_000
TARGET = 0.01
# Small HNSW parameters, so the engine tests build their graphs quickly.
SMALL_INDEX = IndexParams(m=16, ef_construction=64, ef=64, rescore=32)


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


@dataclass(frozen=True)
class Simulated:
    """A tail fitted from a gallery's own pairs, and strangers' best scores by gallery size."""

    tail: ImpostorTail
    best: dict[int, np.ndarray]


@pytest.fixture(scope="module")
def simulated() -> Simulated:
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
    return Simulated(
        tail=tail,
        best={SMALL: _best_scores(small, strangers), LARGE: _best_scores(gallery, strangers)},
    )


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
    simulated: Simulated,
) -> None:
    tail = simulated.tail
    for size in (SMALL, LARGE):
        best = simulated.best[size]
        measured = float(np.mean(best >= tail.threshold_for(TARGET, size)))
        assert TARGET / 1.5 <= measured <= TARGET * 1.5, (size, measured)


def test_a_threshold_fixed_at_a_smaller_gallery_misses_the_target_on_a_larger_one(
    simulated: Simulated,
) -> None:
    small, large = simulated.best[SMALL], simulated.best[LARGE]
    fixed = Calibration.from_impostor_scores(small).threshold_for(TARGET)
    assert float(np.mean(small >= fixed)) <= TARGET
    assert float(np.mean(large >= fixed)) > 1.5 * TARGET


def _people(prints: SyntheticFingerprints, n: int, seed: int) -> TenprintBatch:
    return _population(prints, n, np.random.default_rng(seed))


def _part(batch: TenprintBatch, start: int, stop: int) -> TenprintBatch:
    return TenprintBatch(
        batch.vectors[start:stop], batch.present[start:stop], batch.quality[start:stop]
    )


def test_the_engines_threshold_follows_the_gallery_size_and_fits_its_own_tail(
    tmp_path: Path,
) -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 2_100, seed=4)
    keys = [f"P{i}" for i in range(len(batch))]
    engine = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000)
    reference = engine.impostor_tail
    engine.enroll_batch(keys[:500], _part(batch, 0, 500))
    assert engine.threshold_gallery_size == 500 and engine.tail_gallery_size == 0
    assert engine.threshold == reference.threshold_for(DEFAULT_FPIR, 500)
    # Within 1 % of the size it was computed for, the threshold stays; beyond, it follows.
    engine.enroll_batch(keys[500:505], _part(batch, 500, 505))
    assert engine.threshold_gallery_size == 500
    engine.enroll_batch(keys[505:600], _part(batch, 505, 600))
    assert engine.threshold_gallery_size == 600
    assert engine.threshold > reference.threshold_for(DEFAULT_FPIR, 500)
    assert engine.identify(batch.template(0), target_fpir=0.01) is not None
    assert engine.threshold_for(0.01) == reference.threshold_for(0.01, 600)
    # At tail_fit_min the gallery fits its own tail, and decides with it.
    engine.enroll_batch(keys[600:2_000], _part(batch, 600, 2_000))
    assert engine.tail_gallery_size == 2_000 and engine.impostor_tail != reference
    assert engine.threshold == engine.impostor_tail.threshold_for(DEFAULT_FPIR, 2_000)
    # Deletions count too; the tail and its gallery size are saved and loaded with the index.
    for key in keys[:30]:
        engine.delete(key)
    assert engine.threshold_gallery_size == 1_979  # first beyond 1 % below 2,000
    engine.save(tmp_path)
    loaded = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000)
    loaded.load(tmp_path)
    assert loaded.impostor_tail == engine.impostor_tail and loaded.tail_gallery_size == 2_000
    assert loaded.threshold_gallery_size == len(loaded) == 1_970
    assert loaded.threshold == engine.impostor_tail.threshold_for(DEFAULT_FPIR, 1_970)
    loaded.clear()
    assert loaded.impostor_tail == reference and loaded.tail_gallery_size == 0


def test_a_fixed_threshold_stays_whatever_the_gallery_size() -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 300, seed=6)
    engine = BiometricEngine(params=SMALL_INDEX, threshold=0.5)
    engine.enroll_batch([f"P{i}" for i in range(300)], batch)
    assert engine.threshold == 0.5 and engine.threshold_gallery_size == 300


def test_a_threshold_that_follows_a_tiny_gallery_still_needs_two_fingers() -> None:
    engine = BiometricEngine(params=SMALL_INDEX)
    assert engine.threshold == LONE_FINGER_MAX and engine.threshold_gallery_size == 0
    assert engine.impostor_tail.threshold_for(DEFAULT_FPIR, 1) < LONE_FINGER_MAX
    engine.enroll_batch(["P0"], _people(SyntheticFingerprints(), 1, seed=8))
    assert engine.threshold == LONE_FINGER_MAX == engine.threshold_for(0.5)


class _HeldFit:
    """Wraps an engine's fit so a test decides when it may run."""

    def __init__(self, engine: BiometricEngine) -> None:
        self.go = threading.Event()
        self.started = threading.Event()
        self.sizes: list[int] = []
        fit = engine._fit_tail

        def held(sample):  # type: ignore[no-untyped-def]
            self.started.set()
            assert self.go.wait(60), "the test never let the fit run"
            self.sizes.append(sample.size)
            return fit(sample)

        engine._fit_tail = held  # type: ignore[method-assign]


def test_a_background_fit_lets_enrolments_go_on_and_ignores_later_identities() -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 2_600, seed=4)
    keys = [f"P{i}" for i in range(len(batch))]
    engine = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000, background_fit=True)
    reference = engine.impostor_tail
    held = _HeldFit(engine)
    engine.enroll_batch(keys[:2_000], _part(batch, 0, 2_000))
    assert held.started.wait(60) and engine.fitting
    # The fit waits; the enrolling call did not, and neither does the next one.
    engine.enroll_batch(keys[2_000:], _part(batch, 2_000, 2_600))
    assert engine.impostor_tail == reference and engine.tail_gallery_size == 0
    assert engine.threshold == reference.threshold_for(DEFAULT_FPIR, 2_600)
    assert engine.identify(batch.template(2_500)) is not None  # searches go on too
    held.go.set()
    assert engine.settle(timeout=60) and not engine.fitting
    assert held.sizes == [2_000] and engine.tail_gallery_size == 2_000
    assert engine.threshold == engine.impostor_tail.threshold_for(DEFAULT_FPIR, 2_600)
    # The tail is that of the gallery of 2,000 the fit was asked for: the 600 enrolled
    # meanwhile are not in it, as an engine fitting in the enrolling call finds.
    inline = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000)
    inline.enroll_batch(keys[:2_000], _part(batch, 0, 2_000))
    assert inline.tail_gallery_size == 2_000
    assert engine.impostor_tail.to_array() == pytest.approx(
        inline.impostor_tail.to_array(), rel=1e-3
    )


def test_a_fit_of_a_gallery_cleared_meanwhile_is_dropped() -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 2_000, seed=5)
    engine = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000, background_fit=True)
    reference = engine.impostor_tail
    held = _HeldFit(engine)
    engine.enroll_batch([f"P{i}" for i in range(2_000)], batch)
    assert held.started.wait(60)
    old = engine._fit_worker
    assert old is not None
    engine.clear()
    assert not engine.fitting  # the cleared gallery's fit no longer counts
    held.go.set()
    assert engine.settle(timeout=60)
    old.join(60)  # the old thread ends on its own; it must not put its tail in use
    assert not old.is_alive() and held.sizes == [2_000]
    assert engine.impostor_tail == reference and engine.tail_gallery_size == 0 and not len(engine)


def test_a_failed_background_fit_keeps_the_tail_in_use_and_is_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 4_000, seed=6)
    keys = [f"P{i}" for i in range(len(batch))]
    engine = BiometricEngine(params=SMALL_INDEX, tail_fit_min=2_000, background_fit=True)
    reference = engine.impostor_tail
    fit = engine._fit_tail
    calls: list[int] = []

    def failing_once(sample):  # type: ignore[no-untyped-def]
        calls.append(sample.size)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return fit(sample)

    engine._fit_tail = failing_once  # type: ignore[method-assign]
    engine.enroll_batch(keys[:2_000], _part(batch, 0, 2_000))
    assert engine.settle(timeout=60)
    assert engine.impostor_tail == reference and "fitting the impostor tail failed" in caplog.text
    engine.enroll_batch(keys[2_000:], _part(batch, 2_000, 4_000))
    assert engine.settle(timeout=60)
    assert calls == [2_000, 4_000] and engine.tail_gallery_size == 4_000


class _ShortIndex:
    """An hnswlib index that, like one racing an insertion, refuses any batch of queries, and
    finds only 5 candidates for a single query."""

    def __init__(self, index: object) -> None:
        self.index = index

    def knn_query(self, data, k=1, num_threads=-1):  # type: ignore[no-untyped-def]
        if len(data) > 1 or k > 5:
            raise RuntimeError("Cannot return the results in a contiguous 2D array.")
        return self.index.knn_query(data, k=k)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.index, name)


def test_a_search_hnswlib_refuses_as_a_batch_is_answered_row_by_row() -> None:
    prints = SyntheticFingerprints()
    batch = _people(prints, 300, seed=9)
    engine = BiometricEngine(params=SMALL_INDEX)
    engine.enroll_batch([f"P{i}" for i in range(300)], batch)
    expected, _ = engine.search_labels(_part(batch, 0, 20), k=1)
    engine._index = _ShortIndex(engine._index)
    labels, scores = engine.search_labels(_part(batch, 0, 20), k=3)
    # Each probe still finds itself first, from the few candidates each row could have.
    assert (labels[:, 0] == expected[:, 0]).all() and (labels[:, 0] == np.arange(20)).all()
    assert np.isfinite(scores[:, :3]).all()
