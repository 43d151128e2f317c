"""The tenprint template: wire validation, and the storage and wire forms."""

from __future__ import annotations

import numpy as np
import pytest

from scfed.common.v1 import common_pb2
from services.biometrics.params import FINGERS, TEMPLATE_DIM
from services.biometrics.scoring import match_score
from services.biometrics.template import TenprintTemplate, tenprint_from_proto
from services.runtime.errors import InvalidArgument
from services.world.tenprints import SyntheticFingerprints
from tests.unit.biometrics.captures import capture_template, new_people


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
    (fingers,) = new_people(prints, 1)
    template = capture_template(prints, fingers, seed=1, quality=87)
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


@pytest.mark.parametrize(
    ("finger", "words"),
    [
        (
            {"position": 1, "status": 1, "template": [float("inf")] * TEMPLATE_DIM},
            "NaN or infinite",
        ),
        ({"position": 1, "status": 2, "template": [1.0] * TEMPLATE_DIM}, "must not carry"),
        ({"position": 1, "template": [1.0] * TEMPLATE_DIM}, "status is required"),
    ],
)
def test_bad_templates_are_refused(finger: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        tenprint_from_proto(common_pb2.Tenprint(fingers=[common_pb2.FingerCapture(**finger)]))  # type: ignore[arg-type]


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
    (fingers,) = new_people(prints, 1)
    template = capture_template(prints, fingers, seed=2, missing=frozenset({2, 9}), quality=None)
    blob = template.to_bytes()
    assert len(blob) == FINGERS * TEMPLATE_DIM * 4 + 2 * FINGERS
    again = TenprintTemplate.from_bytes(blob)
    assert np.array_equal(again.vectors, template.vectors)
    assert np.array_equal(again.present, template.present)
    assert np.array_equal(again.quality, template.quality)
    assert again.fingers_present == 8


def test_a_stored_tenprint_of_the_wrong_size_is_refused(prints: SyntheticFingerprints) -> None:
    (fingers,) = new_people(prints, 1)
    blob = capture_template(prints, fingers, seed=3).to_bytes()
    with pytest.raises(ValueError, match=f"expected {len(blob)}"):
        TenprintTemplate.from_bytes(blob[:-1])
    with pytest.raises(ValueError, match="expected"):
        TenprintTemplate.from_bytes(blob, dim=TEMPLATE_DIM // 2)


def test_the_wire_form_sends_present_fingers_and_marks_absent_ones_unprintable(
    prints: SyntheticFingerprints,
) -> None:
    (fingers,) = new_people(prints, 1)
    template = capture_template(prints, fingers, seed=4, missing=frozenset({3}), quality=75)
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


def test_templates_survive_storage(prints: SyntheticFingerprints) -> None:
    people = new_people(prints, 1, seed=5)
    template = tenprint_from_proto(prints.capture(people[0], np.random.default_rng(1)))
    again = TenprintTemplate.from_bytes(template.to_bytes())
    assert match_score(template, again) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(again.present, template.present)
    assert tenprint_from_proto(template.to_proto()).fingers_present == template.fingers_present
