"""The engine: 1:N identification over HNSW, batch enrolment, merge, delete, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.biometrics.engine import BiometricEngine, load_gallery
from services.biometrics.params import DEFAULT_THRESHOLD, FINGERS, IndexParams
from services.biometrics.scoring import coarse_centre, coarse_vectors, match_score
from services.biometrics.template import TenprintBatch, merge_templates, tenprint_from_proto
from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import (
    GALLERY,
    Fingers,
    capture_template,
    new_people,
)


def _assert_each_is_identified(
    engine: BiometricEngine,
    prints: SyntheticFingerprints,
    people: list[Fingers],
    *,
    prefix: str,
    seed: int,
) -> None:
    """A fresh capture of person i is identified as key f"{prefix}{i}"."""
    for i, fingers in enumerate(people):
        mate = engine.identify(capture_template(prints, fingers, seed=seed + i))
        assert mate is not None and mate.key == f"{prefix}{i}"


def _engine(prints: SyntheticFingerprints, people: Fingers) -> BiometricEngine:
    # Small HNSW parameters so the graph, not the exact fallback, answers.
    engine = BiometricEngine(params=IndexParams(m=16, ef_construction=64, ef=64, rescore=32))
    batch = prints.capture_many(people, np.random.default_rng(2))
    engine.enroll_batch([f"P{i}" for i in range(GALLERY)], batch)
    return engine


# --- one by one, at a size the exact fallback answers ----------------------------------------


def test_an_empty_gallery_has_no_candidates(prints: SyntheticFingerprints) -> None:
    (alice,) = new_people(prints, 1)
    engine = BiometricEngine()
    probe = capture_template(prints, alice, seed=14)
    assert len(engine) == 0
    assert engine.search(probe) == []
    assert engine.identify(probe) is None


def test_a_new_capture_of_an_enrolled_person_is_found_and_a_stranger_is_not(
    prints: SyntheticFingerprints,
) -> None:
    people = new_people(prints, 300, seed=5)
    rng = np.random.default_rng(6)
    engine = BiometricEngine(initial_capacity=16)
    for i, fingers in enumerate(people[:250]):
        engine.enroll(f"P{i}", tenprint_from_proto(prints.capture(fingers, rng)))
    assert len(engine) == 250
    for i in (0, 99, 249):
        mate = engine.identify(tenprint_from_proto(prints.capture(people[i], rng)))
        assert mate is not None and mate.key == f"P{i}"
    for fingers in people[250:]:
        assert engine.identify(tenprint_from_proto(prints.capture(fingers, rng))) is None


def test_a_missing_finger_neither_matches_nor_breaks_the_search(
    prints: SyntheticFingerprints,
) -> None:
    people = new_people(prints, 2, seed=5)
    rng = np.random.default_rng(7)
    engine = BiometricEngine()
    engine.enroll("A", tenprint_from_proto(prints.capture(people[0], rng, missing=frozenset({3}))))
    probe = tenprint_from_proto(prints.capture(people[0], rng, missing=frozenset({1, 2})))
    mate = engine.identify(probe)
    assert mate is not None and mate.key == "A"
    stranger = tenprint_from_proto(prints.capture(people[1], rng, missing=frozenset(range(2, 11))))
    assert engine.identify(stranger) is None


def test_search_ranks_candidates_best_first_and_returns_at_most_k(
    prints: SyntheticFingerprints,
) -> None:
    people = new_people(prints, 30)
    engine = BiometricEngine()
    for i, fingers in enumerate(people):
        engine.enroll(f"P{i}", capture_template(prints, fingers, seed=500 + i))
    candidates = engine.search(capture_template(prints, people[7], seed=600), k=3)
    assert len(candidates) == 3
    assert candidates[0].key == "P7"
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > DEFAULT_THRESHOLD > scores[1]
    assert len(engine.search(capture_template(prints, people[7], seed=601), k=50)) == 30


def test_identify_answers_only_at_or_above_the_engines_threshold(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = new_people(prints, 1)
    gallery = capture_template(prints, alice, seed=15)
    probe = capture_template(prints, alice, seed=16, quality=50)
    score = match_score(probe, gallery)
    lenient = BiometricEngine(threshold=score - 1e-4)
    strict = BiometricEngine(threshold=min(score + 1e-3, 0.999))
    for engine in (lenient, strict):
        engine.enroll("alice", gallery)
    mate = lenient.identify(probe)
    assert mate is not None and mate.key == "alice"
    assert mate.score == pytest.approx(score, abs=1e-6)
    assert strict.identify(probe) is None
    assert strict.search(probe, k=1)[0].key == "alice"


def test_enrolling_a_known_key_replaces_its_tenprint(prints: SyntheticFingerprints) -> None:
    alice, bob = new_people(prints, 2)
    engine = BiometricEngine()
    engine.enroll("K1", capture_template(prints, alice, seed=17))
    replacement = capture_template(prints, bob, seed=18)
    engine.enroll("K1", replacement)
    assert len(engine) == 1
    assert np.array_equal(engine.template_of("K1").vectors, replacement.vectors)
    mate = engine.identify(capture_template(prints, bob, seed=19))
    assert mate is not None and mate.key == "K1"
    assert engine.identify(capture_template(prints, alice, seed=20)) is None


def test_the_engine_knows_its_keys_and_refuses_an_unknown_one(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = new_people(prints, 1)
    engine = BiometricEngine()
    engine.enroll("alice", capture_template(prints, alice, seed=21))
    assert "alice" in engine and "bob" not in engine
    with pytest.raises(KeyError):
        engine.template_of("bob")


def test_the_gallery_grows_beyond_its_initial_capacity(prints: SyntheticFingerprints) -> None:
    people = new_people(prints, 40)
    engine = BiometricEngine(initial_capacity=2)
    engine.enroll_many(
        (f"P{i}", capture_template(prints, fingers, seed=700 + i))
        for i, fingers in enumerate(people)
    )
    assert len(engine) == 40
    _assert_each_is_identified(engine, prints, people, prefix="P", seed=800)


def test_a_gallery_reloaded_from_stored_rows_identifies_the_same_people(
    prints: SyntheticFingerprints,
) -> None:
    people = new_people(prints, 5)
    rows = [
        (f"F{i}", capture_template(prints, f, seed=900 + i).to_bytes())
        for i, f in enumerate(people)
    ]
    engine = BiometricEngine()
    assert load_gallery(engine, rows) == 5
    _assert_each_is_identified(engine, prints, people, prefix="F", seed=950)


# --- in batches, where the HNSW graph answers ------------------------------------------------


def test_new_captures_of_enrolled_people_are_found_and_strangers_are_not(
    prints: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(prints, people)
    probes = prints.capture_many(people[:50], np.random.default_rng(3))
    results = engine.search_batch(probes, k=5, num_threads=2)
    assert [r[0].key for r in results] == [f"P{i}" for i in range(50)]
    assert all(r[0].score >= DEFAULT_THRESHOLD for r in results)
    strangers = prints.capture_many(
        prints.new_people(50, np.random.default_rng(4)), np.random.default_rng(5)
    )
    assert all(r[0].score < DEFAULT_THRESHOLD for r in engine.search_batch(strangers, k=1))


def test_a_missing_finger_is_an_empty_slot_that_neither_matches_nor_breaks_search(
    prints: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(prints, people)
    missing = np.zeros((1, FINGERS), dtype=bool)
    missing[0, [0, 5]] = True
    probe = prints.capture_many(people[7:8], np.random.default_rng(6), missing=missing)
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
    prints: SyntheticFingerprints,
    people: Fingers,
) -> None:
    engine = _engine(prints, people)
    new = prints.capture_many(people[9:10], np.random.default_rng(7), quality=100).template(0)
    old = engine.template_of("P9")
    merged = engine.add_encounter("P9", new)
    better = new.quality >= old.quality
    assert np.array_equal(merged.vectors[better], new.vectors[better])
    assert np.array_equal(merge_templates(old, new).quality, merged.quality)
    engine.delete("P9")
    assert "P9" not in engine and len(engine) == GALLERY - 1
    probe = prints.capture_many(people[9:10], np.random.default_rng(8)).template(0)
    assert all(c.key != "P9" for c in engine.search(probe, k=10))


def test_a_saved_engine_loads_and_answers_the_same(
    prints: SyntheticFingerprints,
    people: Fingers,
    tmp_path: Path,
) -> None:
    engine = _engine(prints, people)
    engine.delete("P3")
    engine.save(tmp_path)
    loaded = BiometricEngine(params=engine.params)
    loaded.load(tmp_path)
    assert len(loaded) == len(engine) and "P3" not in loaded
    probes = prints.capture_many(people[:20], np.random.default_rng(9))
    assert [r[0].key for r in loaded.search_batch(probes)] == [
        r[0].key for r in engine.search_batch(probes)
    ]
    loaded.enroll("NEW", probes.template(0))
    assert "NEW" in loaded


def test_the_coarse_centre_is_learned_once_kept_through_save_and_load_and_relearned_alike(
    prints: SyntheticFingerprints,
    people: Fingers,
    tmp_path: Path,
) -> None:
    params = IndexParams(m=16, ef_construction=64, ef=64, rescore=32)
    batch = prints.capture_many(people, np.random.default_rng(2))
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
    more = prints.capture_many(
        prints.new_people(5, np.random.default_rng(6)), np.random.default_rng(7)
    )
    for i in range(5):
        engine.enroll(f"N{i}", more.template(i))
    np.testing.assert_array_equal(engine.centre, centre)
    probes = prints.capture_many(people[:50], np.random.default_rng(3))
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


def test_tune_changes_the_search_breadth_without_a_rebuild(
    prints: SyntheticFingerprints, people: Fingers
) -> None:
    rng = np.random.default_rng(12)
    engine = BiometricEngine(params=IndexParams(m=16, ef_construction=64, ef=64, rescore=32))
    engine.enroll_batch([f"P{i}" for i in range(GALLERY)], prints.capture_many(people, rng))
    engine.tune(ef=8, rescore=16)
    # hnswlib searches with at least k: ef is raised to the proposals rescored.
    assert (engine.params.ef, engine.params.rescore, engine.params.m) == (16, 16, 16)
    probe = prints.capture_many(people[:1], rng, quality=95).template(0)
    assert engine.search(probe, k=1)[0].key == "P0"
    with pytest.raises(ValueError, match="at least 1"):
        engine.tune(ef=0)
    assert engine.params.ef == 16
