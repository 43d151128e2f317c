"""The fused score of two tenprints, on synthetic captures from the world's fingerprint model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from services.biometrics.params import DEFAULT_THRESHOLD, FINGERS
from services.biometrics.scoring import match_score
from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import capture_template, new_people


def test_a_tenprint_scores_one_against_itself_and_scores_are_symmetric(
    prints: SyntheticFingerprints,
) -> None:
    alice, bob = new_people(prints, 2)
    a1, a2 = capture_template(prints, alice, seed=5), capture_template(prints, alice, seed=6)
    b = capture_template(prints, bob, seed=7)
    assert match_score(a1, a1) == pytest.approx(1.0, abs=1e-5)
    assert match_score(a1, a2) == pytest.approx(match_score(a2, a1), abs=1e-6)
    assert match_score(a1, b) == pytest.approx(match_score(b, a1), abs=1e-6)


def test_the_score_sums_cosines_over_common_fingers_over_sqrt_of_ten_times_their_count(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = new_people(prints, 1)
    probe = capture_template(prints, alice, seed=8, missing=frozenset({1, 2, 3}))
    gallery = capture_template(prints, alice, seed=9, missing=frozenset({3, 4}))
    common = [i for i in range(FINGERS) if i + 1 not in {1, 2, 3, 4}]
    expected = sum(float(probe.vectors[i] @ gallery.vectors[i]) for i in common) / np.sqrt(
        len(common) * FINGERS
    )
    assert match_score(probe, gallery) == pytest.approx(expected, abs=1e-6)


def test_one_common_finger_cannot_match_and_none_in_common_scores_zero(
    prints: SyntheticFingerprints,
) -> None:
    (alice,) = new_people(prints, 1)
    right_hand = frozenset(range(6, 11))
    left_hand = frozenset(range(1, 6))
    only_thumb = frozenset(range(2, 11))
    full = capture_template(prints, alice, seed=10)
    one = match_score(capture_template(prints, alice, seed=11, missing=only_thumb), full)
    assert 0.0 < one <= 1 / np.sqrt(FINGERS) < DEFAULT_THRESHOLD
    disjoint = match_score(
        capture_template(prints, alice, seed=12, missing=right_hand),
        capture_template(prints, alice, seed=13, missing=left_hand),
    )
    assert disjoint == 0.0


def test_captures_of_one_person_score_above_the_threshold_and_strangers_near_zero(
    prints: SyntheticFingerprints,
) -> None:
    people = new_people(prints, 20)
    genuine = [
        match_score(
            capture_template(prints, f, seed=100 + i), capture_template(prints, f, seed=200 + i)
        )
        for i, f in enumerate(people)
    ]
    impostor = [
        match_score(
            capture_template(prints, a, seed=300 + i), capture_template(prints, b, seed=400 + i)
        )
        for i, (a, b) in enumerate(itertools.pairwise(people))
    ]
    assert min(genuine) > DEFAULT_THRESHOLD
    assert max(impostor) < DEFAULT_THRESHOLD / 2
    assert abs(float(np.mean(impostor))) < 0.1
