"""The engine at small scale: batch enrolment over HNSW, merge, delete, FPIR calibration, save
and load, and the benchmark's report at a tiny size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from services.cli.bench import render_text, run_biometrics_bench
from services.runtime.biometrics import (
    DEFAULT_THRESHOLD,
    FINGERS,
    BiometricEngine,
    Calibration,
    IndexParams,
    TenprintBatch,
    coarse_centre,
    coarse_vectors,
    merge_templates,
    threshold_for_fpir,
)
from services.world.tenprints import SyntheticFingerprints

GALLERY = 600
Fingers = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def model() -> SyntheticFingerprints:
    """The default synthetic fingerprint model."""
    return SyntheticFingerprints()


@pytest.fixture(scope="module")
def people(model: SyntheticFingerprints) -> Fingers:
    """Identity templates of a small population."""
    return model.new_people(GALLERY, np.random.default_rng(1))


def _engine(model: SyntheticFingerprints, people: Fingers) -> BiometricEngine:
    # Small HNSW parameters so the graph, not the exact fallback, answers.
    engine = BiometricEngine(params=IndexParams(m=16, ef_construction=64, ef=64, rescore=32))
    batch = model.capture_many(people, np.random.default_rng(2))
    engine.enroll_batch([f"P{i}" for i in range(GALLERY)], batch)
    return engine


def test_new_captures_of_enrolled_people_are_found_and_strangers_are_not(
    model: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(model, people)
    probes = model.capture_many(people[:50], np.random.default_rng(3))
    results = engine.search_batch(probes, k=5, num_threads=2)
    assert [r[0].key for r in results] == [f"P{i}" for i in range(50)]
    assert all(r[0].score >= DEFAULT_THRESHOLD for r in results)
    strangers = model.capture_many(
        model.new_people(50, np.random.default_rng(4)), np.random.default_rng(5)
    )
    assert all(r[0].score < DEFAULT_THRESHOLD for r in engine.search_batch(strangers, k=1))


def test_a_missing_finger_is_an_empty_slot_that_neither_matches_nor_breaks_search(
    model: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(model, people)
    missing = np.zeros((1, FINGERS), dtype=bool)
    missing[0, [0, 5]] = True
    probe = model.capture_many(people[7:8], np.random.default_rng(6), missing=missing)
    assert not probe.present[0, 0] and not probe.vectors[0, 0].any()
    assert np.isfinite(coarse_vectors(probe.vectors)).all()
    (best, *_) = engine.search(probe.template(0))
    assert best.key == "P7" and best.score >= DEFAULT_THRESHOLD
    # The same print with only the missing slots is no one.
    only_missing = TenprintBatch(
        vectors=np.zeros_like(probe.vectors), present=missing, quality=probe.quality
    )
    assert all(c.score == 0.0 for c in engine.search(only_missing.template(0), k=3))


def test_an_encounter_merges_the_better_finger_and_delete_forgets_the_identity(
    model: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(model, people)
    new = model.capture_many(people[9:10], np.random.default_rng(7), quality=100).template(0)
    old = engine.template_of("P9")
    merged = engine.add_encounter("P9", new)
    better = new.quality >= old.quality
    assert np.array_equal(merged.vectors[better], new.vectors[better])
    assert np.array_equal(merge_templates(old, new).quality, merged.quality)
    engine.delete("P9")
    assert "P9" not in engine and len(engine) == GALLERY - 1
    probe = model.capture_many(people[9:10], np.random.default_rng(8)).template(0)
    assert all(c.key != "P9" for c in engine.search(probe, k=10))


def test_the_threshold_for_a_target_fpir_lets_at_most_that_share_of_impostors_pass() -> None:
    scores = np.linspace(0.0, 0.5, 1000)
    calibration = Calibration.from_impostor_scores(scores)
    for fpir in (0.001, 0.01, 0.1):
        assert calibration.fpir_at(calibration.threshold_for(fpir)) <= fpir
    assert threshold_for_fpir(0.001) == pytest.approx(DEFAULT_THRESHOLD)
    assert threshold_for_fpir(0.01) < threshold_for_fpir(0.001) < threshold_for_fpir(0.0001)
    with pytest.raises(ValueError):
        calibration.threshold_for(0.0)


def test_a_saved_engine_loads_and_answers_the_same(
    model: SyntheticFingerprints,
    people: Fingers,
    tmp_path: Path,
) -> None:
    engine = _engine(model, people)
    engine.delete("P3")
    engine.save(tmp_path)
    loaded = BiometricEngine(params=engine.params)
    loaded.load(tmp_path)
    assert len(loaded) == len(engine) and "P3" not in loaded
    probes = model.capture_many(people[:20], np.random.default_rng(9))
    assert [r[0].key for r in loaded.search_batch(probes)] == [
        r[0].key for r in engine.search_batch(probes)
    ]
    loaded.enroll("NEW", probes.template(0))
    assert "NEW" in loaded


def test_the_coarse_centre_is_learned_once_kept_through_save_and_load_and_relearned_alike(
    model: SyntheticFingerprints,
    people: Fingers,
    tmp_path: Path,
) -> None:
    params = IndexParams(m=16, ef_construction=64, ef=64, rescore=32)
    batch = model.capture_many(people, np.random.default_rng(2))
    keys = [f"P{i}" for i in range(GALLERY)]
    # Enrolled one batch at a time: uncentred until 200 identities, then centred for good.
    engine = BiometricEngine(params=params, centre_sample=200)
    for start in range(0, GALLERY, 150):
        part = slice(start, start + 150)
        engine.enroll_batch(
            keys[part], TenprintBatch(batch.vectors[part], batch.present[part], batch.quality[part])
        )
        assert (engine.centre is None) == (start + 150 < 200)
    centre = engine.centre
    assert centre is not None
    np.testing.assert_array_equal(centre, coarse_centre(batch.vectors[:200], batch.present[:200]))
    # The shared pattern-class offset is gone: the centred coarse vectors average near zero.
    centred = coarse_vectors(batch.vectors, centre)
    assert np.linalg.norm(centred.mean(axis=0)) < 0.5 * np.linalg.norm(
        coarse_vectors(batch.vectors).mean(axis=0)
    )
    # Enrolling more (one by one) does not move it.
    more = model.capture_many(
        model.new_people(5, np.random.default_rng(6)), np.random.default_rng(7)
    )
    for i in range(5):
        engine.enroll(f"N{i}", more.template(i))
    np.testing.assert_array_equal(engine.centre, centre)
    probes = model.capture_many(people[:50], np.random.default_rng(3))
    assert [r[0].key for r in engine.search_batch(probes)] == keys[:50]
    # Saved and loaded with the index.
    engine.save(tmp_path)
    loaded = BiometricEngine(params=params)
    loaded.load(tmp_path)
    np.testing.assert_array_equal(loaded.centre, centre)
    assert [r[0].key for r in loaded.search_batch(probes)] == keys[:50]
    # A rebuild from the same records in the same order learns the same centre.
    engine.clear()
    assert engine.centre is None
    engine.enroll_batch(keys, batch)
    np.testing.assert_array_equal(engine.centre, centre)
    # An engine saved before it learned a centre loads without one.
    small = BiometricEngine(params=params)
    small.enroll_batch(
        keys[:50], TenprintBatch(batch.vectors[:50], batch.present[:50], batch.quality[:50])
    )
    small.save(tmp_path / "small")
    reloaded = BiometricEngine(params=params)
    reloaded.load(tmp_path / "small")
    assert reloaded.centre is None and len(reloaded) == 50


def test_the_benchmark_runs_at_a_tiny_size_and_reports_every_figure() -> None:
    report = run_biometrics_bench(gallery=300, probes=20, seed=3, progress=False)
    for key in (
        "gallery",
        "probes",
        "rank1",
        "fnir_at_fpir_0_001",
        "fnir_at_fpir_0_01",
        "mate_recall_vs_exact",
        "search_ms",
        "qps",
        "enroll_per_s",
        "bytes_per_identity",
        "save_s",
        "load_s",
        "peers",
    ):
        assert key in report, key
    assert set(report["search_ms"]) >= {"p50", "p99"}
    assert set(report["peers"]) == {"exact", "faiss_hnsw"}
    assert report["peers"]["exact"]["mate_recall_vs_exact"] == 1.0
    assert report["rank1"] == 1.0 and report["gallery"] == 300
    assert "trade-off" in render_text(report)


def test_exact_brute_force_in_blocks_finds_each_probes_best(
    model: SyntheticFingerprints, people: Fingers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import bench
    from services.runtime.biometrics import fused_scores

    rng = np.random.default_rng(11)
    gallery = model.capture_many(people, rng)
    probes = model.capture_many(people[rng.choice(GALLERY, 23, replace=False)], rng)
    # Blocks that do not divide the probes or the gallery evenly.
    monkeypatch.setattr(bench, "EXACT_CHUNK", 97)
    monkeypatch.setattr(bench, "EXACT_PROBE_BLOCK", 5)
    labels, scores = bench._exact_top1(gallery, probes, bench._Bars(False))
    for i in range(len(probes)):
        each = fused_scores(probes.vectors[i], probes.present[i], gallery.vectors, gallery.present)
        assert labels[i] == int(each.argmax())
        assert scores[i] == pytest.approx(float(each.max()), abs=1e-5)


def test_tune_changes_the_search_breadth_without_a_rebuild(
    model: SyntheticFingerprints, people: Fingers
) -> None:
    rng = np.random.default_rng(12)
    engine = BiometricEngine(params=IndexParams(m=16, ef_construction=64, ef=64, rescore=32))
    engine.enroll_batch([f"P{i}" for i in range(GALLERY)], model.capture_many(people, rng))
    engine.tune(ef=8, rescore=16)
    # hnswlib searches with at least k: ef is raised to the proposals rescored.
    assert (engine.params.ef, engine.params.rescore, engine.params.m) == (16, 16, 16)
    probe = model.capture_many(people[:1], rng, quality=95).template(0)
    assert engine.search(probe, k=1)[0].key == "P0"
    with pytest.raises(ValueError, match="at least 1"):
        engine.tune(ef=0)
    assert engine.params.ef == 16


def test_the_sweep_reports_each_m_and_ef() -> None:
    from services.cli.bench import render_sweep, run_index_sweep

    report = run_index_sweep(
        gallery=400,
        probes=30,
        seed=3,
        ms=[8, 16],
        efs=[8, 32],
        ef_construction=32,
        rescore=8,
        progress=False,
    )
    assert [(r["m"], r["ef"]) for r in report["rows"]] == [(8, 8), (8, 32), (16, 8), (16, 32)]
    for row in report["rows"]:
        assert 0 <= row["missed"] <= report["exact_finds_mate"] <= 30
        assert row["mean_ms"] > 0 and row["qps"] > 0 and row["enroll_per_s"] > 0
    assert "missed" in render_sweep(report)
