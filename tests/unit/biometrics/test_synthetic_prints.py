"""The world's synthetic fingerprint model: people, captures, missing fingers and quality."""

from __future__ import annotations

import numpy as np
import pytest

from scfed.common.v1 import common_pb2
from services.biometrics.params import DEFAULT_THRESHOLD, FINGERS, TEMPLATE_DIM
from services.biometrics.scoring import match_score
from services.biometrics.template import tenprint_from_proto
from services.world.tenprints import (
    FINGER_QUALITY_JITTER,
    MAX_QUALITY,
    MIN_QUALITY,
    SyntheticFingerprints,
)
from tests.unit.biometrics.captures import capture_template, new_people


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
    (fingers,) = new_people(prints, 1)
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
    (fingers,) = new_people(prints, 1)
    whole = prints.capture(fingers, np.random.default_rng(4))
    partial = prints.capture(fingers, np.random.default_rng(4), missing=frozenset({5}))
    for a, b in zip(whole.fingers, partial.fingers, strict=True):
        if a.position != 5:
            assert list(a.template) == list(b.template) and a.quality == b.quality


def test_drawn_qualities_stay_in_range_and_close_within_a_session(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = new_people(prints, 1)
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
    people = new_people(prints, 20)

    def mean_genuine(quality: int) -> float:
        return float(
            np.mean(
                [
                    match_score(
                        capture_template(prints, f, seed=10 + i, quality=quality),
                        capture_template(prints, f, seed=50 + i, quality=quality),
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
    (fingers,) = new_people(prints, 1)
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
