"""A tenprint template: ten finger slots, their wire form (validated) and their storage form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2

from ..runtime.errors import InvalidArgument
from .params import FINGERS, TEMPLATE_DIM

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TenprintTemplate:
    """Ten finger slots: unit-length vectors (zeros where absent), presence and quality."""

    vectors: FloatArray  # (FINGERS, dim), rows L2-normalised, zeros where absent
    present: BoolArray  # (FINGERS,)
    quality: npt.NDArray[np.uint8]  # (FINGERS,), 0 where absent

    @property
    def fingers_present(self) -> int:
        """How many fingers carry a template."""
        return int(self.present.sum())

    def to_bytes(self) -> bytes:
        """Compact storage form: vectors, then presence, then quality."""
        return (
            self.vectors.astype("<f4").tobytes()
            + self.present.astype(np.uint8).tobytes()
            + self.quality.astype(np.uint8).tobytes()
        )

    @classmethod
    def from_bytes(cls, blob: bytes, dim: int = TEMPLATE_DIM) -> TenprintTemplate:
        """Reads the storage form back."""
        size = FINGERS * dim * 4
        if len(blob) != size + 2 * FINGERS:
            raise ValueError(f"stored tenprint has {len(blob)} bytes, expected {size + 20}")
        vectors = np.frombuffer(blob[:size], dtype="<f4").reshape(FINGERS, dim).astype(np.float32)
        present = np.frombuffer(blob[size : size + FINGERS], dtype=np.uint8).astype(bool)
        quality = np.frombuffer(blob[size + FINGERS :], dtype=np.uint8).copy()
        return cls(vectors=vectors, present=present, quality=quality)

    def to_proto(self) -> common_pb2.Tenprint:
        """The wire form (templates as sent, absent fingers marked unprintable)."""
        fingers = []
        for i in range(FINGERS):
            if self.present[i]:
                fingers.append(
                    common_pb2.FingerCapture(
                        position=i + 1,
                        status=common_pb2.FINGER_STATUS_PRESENT,
                        template=self.vectors[i].tolist(),
                        quality=int(self.quality[i]),
                    )
                )
            else:
                fingers.append(
                    common_pb2.FingerCapture(
                        position=i + 1, status=common_pb2.FINGER_STATUS_UNPRINTABLE
                    )
                )
        return common_pb2.Tenprint(fingers=fingers)


def tenprint_from_proto(
    tenprint: common_pb2.Tenprint, *, dim: int = TEMPLATE_DIM, field: str = "tenprint"
) -> TenprintTemplate:
    """Validates a wire tenprint and turns it into a template; refuses bad input with a reason."""
    vectors = np.zeros((FINGERS, dim), dtype=np.float32)
    present = np.zeros(FINGERS, dtype=bool)
    quality = np.zeros(FINGERS, dtype=np.uint8)
    seen: set[int] = set()
    for finger in tenprint.fingers:
        pos = finger.position
        where = f"{field}.fingers[position={pos}]"
        if not 1 <= pos <= FINGERS:
            raise InvalidArgument(f"{where}: finger position must be 1..10")
        if pos in seen:
            raise InvalidArgument(f"{where}: finger position appears more than once")
        seen.add(pos)
        if finger.quality > 100:
            raise InvalidArgument(f"{where}: quality must be 0..100, got {finger.quality}")
        if finger.status == common_pb2.FINGER_STATUS_PRESENT:
            values = np.asarray(finger.template, dtype=np.float32)
            if values.shape != (dim,):
                raise InvalidArgument(
                    f"{where}: template must have {dim} values, got {values.shape[0]}"
                )
            if not np.all(np.isfinite(values)):
                raise InvalidArgument(f"{where}: template holds NaN or infinite values")
            norm = float(np.linalg.norm(values))
            if norm == 0.0 or not math.isfinite(norm):
                raise InvalidArgument(f"{where}: template is all zeros")
            vectors[pos - 1] = values / norm
            present[pos - 1] = True
            quality[pos - 1] = finger.quality
        elif finger.status in (
            common_pb2.FINGER_STATUS_AMPUTATED,
            common_pb2.FINGER_STATUS_UNPRINTABLE,
        ):
            if len(finger.template):
                raise InvalidArgument(f"{where}: a missing finger must not carry a template")
        else:
            raise InvalidArgument(f"{where}: finger status is required")
    if not present.any():
        raise InvalidArgument(f"{field}: no usable finger (every finger missing or absent)")
    return TenprintTemplate(vectors=vectors, present=present, quality=quality)


@dataclass(frozen=True)
class TenprintBatch:
    """Many tenprints as arrays: vectors (n, 10, dim) zero where absent, presence, quality."""

    vectors: FloatArray
    present: BoolArray
    quality: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def template(self, i: int) -> TenprintTemplate:
        """The i-th tenprint alone."""
        return TenprintTemplate(
            vectors=self.vectors[i], present=self.present[i], quality=self.quality[i]
        )

    @classmethod
    def of(cls, templates: Sequence[TenprintTemplate]) -> TenprintBatch:
        """Stacks single tenprints."""
        return cls(
            vectors=np.stack([t.vectors for t in templates]).astype(np.float32),
            present=np.stack([t.present for t in templates]),
            quality=np.stack([t.quality for t in templates]),
        )


def merge_templates(old: TenprintTemplate, new: TenprintTemplate) -> TenprintTemplate:
    """An identity's tenprint after a new encounter: per finger, the better-quality impression."""
    take = new.present & (~old.present | (new.quality >= old.quality))
    vectors = np.where(take[:, None], new.vectors, old.vectors).astype(np.float32)
    return TenprintTemplate(
        vectors=vectors,
        present=old.present | new.present,
        quality=np.where(take, new.quality, old.quality).astype(np.uint8),
    )
