"""The tenprint engine: wire validation, storage, fused scoring and 1:N identification, on
synthetic captures from the world's fingerprint model."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import numpy.typing as npt
import pytest

from scfed.common.v1 import common_pb2
from services.runtime.biometrics import (
    DEFAULT_THRESHOLD,
    FINGERS,
    TEMPLATE_DIM,
    BiometricEngine,
    StagedEnrollments,
    TenprintTemplate,
    load_gallery,
    match_score,
    tenprint_from_proto,
)
from services.runtime.errors import InvalidArgument
from services.world.tenprints import (
    FINGER_QUALITY_JITTER,
    MAX_QUALITY,
    MIN_QUALITY,
    SyntheticFingerprints,
)

Fingers = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def prints() -> SyntheticFingerprints:
    """The default synthetic fingerprint model."""
    return SyntheticFingerprints()


def _people(prints: SyntheticFingerprints, n: int, seed: int = 11) -> list[Fingers]:
    rng = np.random.default_rng(seed)
    return [prints.new_fingers(rng) for _ in range(n)]


def _template(
    prints: SyntheticFingerprints,
    fingers: Fingers,
    seed: int,
    *,
    missing: frozenset[int] = frozenset(),
    quality: int | None = 90,
) -> TenprintTemplate:
    tenprint = prints.capture(
        fingers, np.random.default_rng(seed), missing=missing, quality=quality, unprintable_rate=0.0
    )
    return tenprint_from_proto(tenprint)


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
        mate = engine.identify(_template(prints, fingers, seed=seed + i))
        assert mate is not None and mate.key == f"{prefix}{i}"


def _present(
    position: int, values: list[float] | None = None, quality: int = 80
) -> common_pb2.FingerCapture:
    return common_pb2.FingerCapture(
        position=position,
        status=common_pb2.FINGER_STATUS_PRESENT,
        template=values if values is not None else [1.0] * TEMPLATE_DIM,
        quality=quality,
    )


def _tenprint(*fingers: common_pb2.FingerCapture) -> common_pb2.Tenprint:
    return common_pb2.Tenprint(fingers=fingers)


# --- tenprint_from_proto -------------------------------------------------------------------


def test_a_full_capture_becomes_ten_unit_length_fingers_with_their_quality(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    template = _template(prints, fingers, seed=1, quality=87)
    assert template.fingers_present == FINGERS
    assert template.vectors.shape == (FINGERS, TEMPLATE_DIM)
    assert np.allclose(np.linalg.norm(template.vectors, axis=1), 1.0, atol=1e-5)
    assert template.quality.tolist() == [87] * FINGERS


def test_a_template_is_normalised_to_unit_length_whatever_its_scale() -> None:
    template = tenprint_from_proto(_tenprint(_present(4, [3.0] * TEMPLATE_DIM)))
    expected = np.full(TEMPLATE_DIM, 1 / np.sqrt(TEMPLATE_DIM), dtype=np.float32)
    assert np.allclose(template.vectors[3], expected, atol=1e-6)
    assert template.present.tolist() == [i == 3 for i in range(FINGERS)]


def test_missing_fingers_are_empty_slots_without_vector_or_quality() -> None:
    tenprint = _tenprint(
        _present(1, quality=70),
        _present(2, quality=60),
        common_pb2.FingerCapture(position=3, status=common_pb2.FINGER_STATUS_AMPUTATED),
        common_pb2.FingerCapture(position=7, status=common_pb2.FINGER_STATUS_UNPRINTABLE),
    )
    template = tenprint_from_proto(tenprint)
    assert template.fingers_present == 2
    assert template.present.tolist()[:3] == [True, True, False]
    assert not template.present[6]
    assert not template.vectors[2].any() and not template.vectors[6].any()
    assert template.quality.tolist() == [70, 60, 0, 0, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("fingers", "words"),
    [
        ([_present(0)], r"fingers\[position=0\]: finger position must be 1..10"),
        ([_present(11)], r"fingers\[position=11\]: finger position must be 1..10"),
        ([_present(2), _present(2)], "appears more than once"),
        ([_present(1, quality=101)], "quality must be 0..100, got 101"),
        ([_present(1, [1.0] * (TEMPLATE_DIM - 1))], f"must have {TEMPLATE_DIM} values, got 31"),
        ([_present(1, [1.0] * (TEMPLATE_DIM + 1))], f"must have {TEMPLATE_DIM} values, got 33"),
        ([_present(1, [float("nan")] * TEMPLATE_DIM)], "NaN or infinite"),
        ([_present(1, [float("-inf")] + [1.0] * (TEMPLATE_DIM - 1))], "NaN or infinite"),
        ([_present(1, [0.0] * TEMPLATE_DIM)], "all zeros"),
        (
            [
                common_pb2.FingerCapture(
                    position=5,
                    status=common_pb2.FINGER_STATUS_UNPRINTABLE,
                    template=[1.0] * TEMPLATE_DIM,
                )
            ],
            "a missing finger must not carry a template",
        ),
        (
            [common_pb2.FingerCapture(position=1, template=[1.0] * TEMPLATE_DIM)],
            "finger status is required",
        ),
        (
            [
                common_pb2.FingerCapture(position=p, status=common_pb2.FINGER_STATUS_AMPUTATED)
                for p in range(1, FINGERS + 1)
            ],
            "no usable finger",
        ),
        ([], "no usable finger"),
    ],
)
def test_a_bad_wire_tenprint_is_refused_with_the_reason(
    fingers: list[common_pb2.FingerCapture], words: str
) -> None:
    with pytest.raises(InvalidArgument, match=words):
        tenprint_from_proto(_tenprint(*fingers))


def test_a_refusal_names_the_field_the_tenprint_came_from() -> None:
    with pytest.raises(InvalidArgument, match=r"^car\.tenprint\.fingers\[position=12\]"):
        tenprint_from_proto(_tenprint(_present(12)), field="car.tenprint")
    with pytest.raises(InvalidArgument, match=r"^car\.tenprint: no usable finger"):
        tenprint_from_proto(_tenprint(), field="car.tenprint")


def test_the_template_dimension_is_the_engines_not_a_constant() -> None:
    small = tenprint_from_proto(_tenprint(_present(1, [1.0] * 8)), dim=8)
    assert small.vectors.shape == (FINGERS, 8)
    with pytest.raises(InvalidArgument, match="must have 8 values"):
        tenprint_from_proto(_tenprint(_present(1)), dim=8)


# --- TenprintTemplate storage and wire forms -----------------------------------------------


def test_the_storage_form_round_trips_vectors_presence_and_quality(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    template = _template(prints, fingers, seed=2, missing=frozenset({2, 9}), quality=None)
    blob = template.to_bytes()
    assert len(blob) == FINGERS * TEMPLATE_DIM * 4 + 2 * FINGERS
    again = TenprintTemplate.from_bytes(blob)
    assert np.array_equal(again.vectors, template.vectors)
    assert np.array_equal(again.present, template.present)
    assert np.array_equal(again.quality, template.quality)
    assert again.fingers_present == 8


def test_a_stored_tenprint_of_the_wrong_size_is_refused(prints: SyntheticFingerprints) -> None:
    (fingers,) = _people(prints, 1)
    blob = _template(prints, fingers, seed=3).to_bytes()
    with pytest.raises(ValueError, match=f"expected {len(blob)}"):
        TenprintTemplate.from_bytes(blob[:-1])
    with pytest.raises(ValueError, match="expected"):
        TenprintTemplate.from_bytes(blob, dim=TEMPLATE_DIM // 2)


def test_the_wire_form_sends_present_fingers_and_marks_absent_ones_unprintable(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    template = _template(prints, fingers, seed=4, missing=frozenset({3}), quality=75)
    wire = template.to_proto()
    assert [f.position for f in wire.fingers] == list(range(1, FINGERS + 1))
    absent = wire.fingers[2]
    assert absent.status == common_pb2.FINGER_STATUS_UNPRINTABLE
    assert len(absent.template) == 0 and absent.quality == 0
    for finger in (f for f in wire.fingers if f.position != 3):
        assert finger.status == common_pb2.FINGER_STATUS_PRESENT
        assert len(finger.template) == TEMPLATE_DIM and finger.quality == 75
    again = tenprint_from_proto(wire)
    assert np.allclose(again.vectors, template.vectors, atol=1e-6)
    assert np.array_equal(again.present, template.present)
    assert np.array_equal(again.quality, template.quality)


# --- match_score -----------------------------------------------------------------------------


def test_a_tenprint_scores_one_against_itself_and_scores_are_symmetric(
    prints: SyntheticFingerprints,
) -> None:
    alice, bob = _people(prints, 2)
    a1, a2 = _template(prints, alice, seed=5), _template(prints, alice, seed=6)
    b = _template(prints, bob, seed=7)
    assert match_score(a1, a1) == pytest.approx(1.0, abs=1e-5)
    assert match_score(a1, a2) == pytest.approx(match_score(a2, a1), abs=1e-6)
    assert match_score(a1, b) == pytest.approx(match_score(b, a1), abs=1e-6)


def test_the_score_sums_cosines_over_common_fingers_over_sqrt_of_ten_times_their_count(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = _people(prints, 1)
    probe = _template(prints, alice, seed=8, missing=frozenset({1, 2, 3}))
    gallery = _template(prints, alice, seed=9, missing=frozenset({3, 4}))
    common = [i for i in range(FINGERS) if i + 1 not in {1, 2, 3, 4}]
    expected = sum(float(probe.vectors[i] @ gallery.vectors[i]) for i in common) / np.sqrt(
        len(common) * FINGERS
    )
    assert match_score(probe, gallery) == pytest.approx(expected, abs=1e-6)


def test_one_common_finger_cannot_match_and_none_in_common_scores_zero(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = _people(prints, 1)
    right_hand = frozenset(range(6, 11))
    left_hand = frozenset(range(1, 6))
    only_thumb = frozenset(range(2, 11))
    full = _template(prints, alice, seed=10)
    one = match_score(_template(prints, alice, seed=11, missing=only_thumb), full)
    assert 0.0 < one <= 1 / np.sqrt(FINGERS) < DEFAULT_THRESHOLD
    disjoint = match_score(
        _template(prints, alice, seed=12, missing=right_hand),
        _template(prints, alice, seed=13, missing=left_hand),
    )
    assert disjoint == 0.0


def test_captures_of_one_person_score_above_the_threshold_and_strangers_near_zero(
    prints: SyntheticFingerprints,
) -> None:
    people = _people(prints, 20)
    genuine = [
        match_score(_template(prints, f, seed=100 + i), _template(prints, f, seed=200 + i))
        for i, f in enumerate(people)
    ]
    impostor = [
        match_score(_template(prints, a, seed=300 + i), _template(prints, b, seed=400 + i))
        for i, (a, b) in enumerate(itertools.pairwise(people))
    ]
    assert min(genuine) > DEFAULT_THRESHOLD
    assert max(impostor) < DEFAULT_THRESHOLD / 2
    assert abs(float(np.mean(impostor))) < 0.1


# --- BiometricEngine -------------------------------------------------------------------------


def test_an_empty_gallery_has_no_candidates(prints: SyntheticFingerprints) -> None:
    (alice,) = _people(prints, 1)
    engine = BiometricEngine()
    probe = _template(prints, alice, seed=14)
    assert len(engine) == 0
    assert engine.search(probe) == []
    assert engine.identify(probe) is None


def test_search_ranks_candidates_best_first_and_returns_at_most_k(
    prints: SyntheticFingerprints,
) -> None:
    people = _people(prints, 30)
    engine = BiometricEngine()
    for i, fingers in enumerate(people):
        engine.enroll(f"P{i}", _template(prints, fingers, seed=500 + i))
    candidates = engine.search(_template(prints, people[7], seed=600), k=3)
    assert len(candidates) == 3
    assert candidates[0].key == "P7"
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > DEFAULT_THRESHOLD > scores[1]
    assert len(engine.search(_template(prints, people[7], seed=601), k=50)) == 30


def test_identify_answers_only_at_or_above_the_engines_threshold(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = _people(prints, 1)
    gallery = _template(prints, alice, seed=15)
    probe = _template(prints, alice, seed=16, quality=50)
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
    alice, bob = _people(prints, 2)
    engine = BiometricEngine()
    engine.enroll("K1", _template(prints, alice, seed=17))
    replacement = _template(prints, bob, seed=18)
    engine.enroll("K1", replacement)
    assert len(engine) == 1
    assert np.array_equal(engine.template_of("K1").vectors, replacement.vectors)
    mate = engine.identify(_template(prints, bob, seed=19))
    assert mate is not None and mate.key == "K1"
    assert engine.identify(_template(prints, alice, seed=20)) is None


def test_the_engine_knows_its_keys_and_refuses_an_unknown_one(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = _people(prints, 1)
    engine = BiometricEngine()
    engine.enroll("alice", _template(prints, alice, seed=21))
    assert "alice" in engine and "bob" not in engine
    with pytest.raises(KeyError):
        engine.template_of("bob")


def test_the_gallery_grows_beyond_its_initial_capacity(prints: SyntheticFingerprints) -> None:
    people = _people(prints, 40)
    engine = BiometricEngine(initial_capacity=2)
    engine.enroll_many(
        (f"P{i}", _template(prints, fingers, seed=700 + i)) for i, fingers in enumerate(people)
    )
    assert len(engine) == 40
    _assert_each_is_identified(engine, prints, people, prefix="P", seed=800)


def test_a_gallery_reloaded_from_stored_rows_identifies_the_same_people(
    prints: SyntheticFingerprints,
) -> None:
    people = _people(prints, 5)
    rows = [(f"F{i}", _template(prints, f, seed=900 + i).to_bytes()) for i, f in enumerate(people)]
    engine = BiometricEngine()
    assert load_gallery(engine, rows) == 5
    _assert_each_is_identified(engine, prints, people, prefix="F", seed=950)


def test_staged_enrollments_reach_the_index_only_when_the_transaction_commits(
    prints: SyntheticFingerprints,
) -> None:
    alice, bob = _people(prints, 2)
    engine = BiometricEngine()
    staged = StagedEnrollments()

    async def scenario() -> None:
        async with staged.transaction():
            staged.stage(engine, "alice", _template(prints, alice, seed=22))
            assert [key for key, _ in staged.staged(engine)] == ["alice"]
            assert "alice" not in engine
        assert "alice" in engine
        with pytest.raises(RuntimeError, match="rolled back"):
            async with staged.transaction():
                staged.stage(engine, "bob", _template(prints, bob, seed=23))
                raise RuntimeError("rolled back")
        assert "bob" not in engine
        assert staged.staged(engine) == []

    asyncio.run(scenario())
    assert len(engine) == 1


# --- SyntheticFingerprints -------------------------------------------------------------------


def test_new_fingers_are_ten_distinct_unit_vectors(prints: SyntheticFingerprints) -> None:
    fingers = prints.new_fingers(np.random.default_rng(1))
    assert fingers.shape == (FINGERS, TEMPLATE_DIM)
    assert np.allclose(np.linalg.norm(fingers, axis=1), 1.0)
    assert len({row.tobytes() for row in fingers}) == FINGERS
    other = prints.new_fingers(np.random.default_rng(2))
    assert not np.allclose(fingers, other)


def test_missing_fingers_are_captured_amputated_without_template_or_quality(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    missing = frozenset({1, 10})
    capture = prints.capture(fingers, np.random.default_rng(3), missing=missing, quality=80)
    assert len(capture.fingers) == FINGERS
    for finger in capture.fingers:
        if finger.position in missing:
            assert finger.status == common_pb2.FINGER_STATUS_AMPUTATED
            assert len(finger.template) == 0 and finger.quality == 0
        else:
            assert finger.status == common_pb2.FINGER_STATUS_PRESENT
            assert len(finger.template) == TEMPLATE_DIM and finger.quality == 80
    assert tenprint_from_proto(capture).fingers_present == 8


def test_a_missing_finger_does_not_change_the_other_impressions(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    whole = prints.capture(fingers, np.random.default_rng(4))
    partial = prints.capture(fingers, np.random.default_rng(4), missing=frozenset({5}))
    for a, b in zip(whole.fingers, partial.fingers, strict=True):
        if a.position != 5:
            assert list(a.template) == list(b.template) and a.quality == b.quality


def test_drawn_qualities_stay_in_range_and_close_within_a_session(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = _people(prints, 1)
    rng = np.random.default_rng(5)
    for _ in range(200):
        qualities = [
            f.quality
            for f in prints.capture(fingers, rng).fingers
            if f.status == common_pb2.FINGER_STATUS_PRESENT
        ]
        assert all(MIN_QUALITY <= q <= MAX_QUALITY for q in qualities)
        assert max(qualities) - min(qualities) <= 2 * FINGER_QUALITY_JITTER


def test_worse_quality_captures_score_lower_but_still_match(
    prints: SyntheticFingerprints,
) -> None:
    people = _people(prints, 20)

    def mean_genuine(quality: int) -> float:
        return float(
            np.mean(
                [
                    match_score(
                        _template(prints, f, seed=10 + i, quality=quality),
                        _template(prints, f, seed=50 + i, quality=quality),
                    )
                    for i, f in enumerate(people)
                ]
            )
        )

    best, worst = mean_genuine(MAX_QUALITY), mean_genuine(MIN_QUALITY)
    assert best > worst > DEFAULT_THRESHOLD
    assert best == pytest.approx(0.91, abs=0.04)
    assert worst == pytest.approx(0.60, abs=0.06)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"missing": frozenset({0})}, "missing finger positions must be 1..10"),
        ({"missing": frozenset({11})}, "missing finger positions must be 1..10"),
        ({"quality": 0}, "quality must be 1..100"),
        ({"quality": 101}, "quality must be 1..100"),
    ],
)
def test_a_capture_with_bad_arguments_is_refused(
    prints: SyntheticFingerprints, kwargs: dict[str, object], words: str
) -> None:
    (fingers,) = _people(prints, 1)
    with pytest.raises(ValueError, match=words):
        prints.capture(fingers, np.random.default_rng(6), **kwargs)  # type: ignore[arg-type]


def test_fingers_of_the_wrong_shape_are_refused(prints: SyntheticFingerprints) -> None:
    with pytest.raises(ValueError, match="fingers must have shape"):
        prints.capture(np.zeros((9, TEMPLATE_DIM)), np.random.default_rng(7))
    with pytest.raises(ValueError, match="at least 2"):
        SyntheticFingerprints(dim=1)


def test_the_model_is_fixed_by_its_seed(prints: SyntheticFingerprints) -> None:
    same = SyntheticFingerprints()
    assert same == prints and hash(same) == hash(prints)
    assert np.array_equal(same.mixing, prints.mixing)
    other = SyntheticFingerprints(seed=1)
    assert other != prints and not np.allclose(other.mixing, prints.mixing)
