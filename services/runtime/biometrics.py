"""The tenprint biometric engine shared by the SIB's state file, IAFIS and IDENT.

A tenprint is ten finger slots (FGP 1..10); each present finger carries a float32 feature
template of `TEMPLATE_DIM` values. Identification is 1:N: an HNSW index (hnswlib, inner
product) over the fused, normalised tenprint vector proposes candidates, and each candidate is
rescored exactly as the mean cosine similarity over the fingers present in both the probe and
the gallery tenprint. A missing finger is an empty slot: it takes no part in the score, and a
tenprint with no usable finger is refused.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import hnswlib
import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2
from services.runtime.errors import InvalidArgument

FINGERS = 10
TEMPLATE_DIM = 32
MODEL_VERSION = "scfed-synthetic-tenprint-1"
DEFAULT_THRESHOLD = 0.55
# Fewer co-present fingers than this cannot make a match decision.
MIN_COMMON_FINGERS = 2

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


def fused_vector(template: TenprintTemplate) -> FloatArray:
    """The unit-length vector the HNSW index holds: present fingers, concatenated."""
    flat = template.vectors.reshape(-1)
    norm = float(np.linalg.norm(flat))
    return (flat / norm).astype(np.float32)


def match_score(probe: TenprintTemplate, gallery: TenprintTemplate) -> float:
    """Mean cosine similarity over the fingers both tenprints hold; 0 below two in common."""
    common = probe.present & gallery.present
    n = int(common.sum())
    if n < MIN_COMMON_FINGERS:
        return 0.0
    cosines = np.einsum("ij,ij->i", probe.vectors[common], gallery.vectors[common])
    return float(cosines.mean())


@dataclass(frozen=True)
class Candidate:
    """One entry of a ranked candidate list."""

    key: str
    score: float


class BiometricEngine:
    """An in-memory 1:N tenprint index; the owning service's database is the source of truth."""

    def __init__(
        self,
        *,
        dim: int = TEMPLATE_DIM,
        threshold: float = DEFAULT_THRESHOLD,
        m: int = 16,
        ef_construction: int = 100,
        ef_search: int = 64,
        initial_capacity: int = 1024,
    ) -> None:
        self.dim = dim
        self.threshold = threshold
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._index = hnswlib.Index(space="ip", dim=FINGERS * dim)
        self._index.init_index(
            max_elements=initial_capacity, ef_construction=ef_construction, M=m, random_seed=7
        )
        self._index.set_ef(ef_search)
        self._keys: list[str] = []
        self._labels: dict[str, int] = {}
        self._templates: list[TenprintTemplate] = []

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._labels

    def describe(self) -> str:
        """The index parameters, for Info."""
        return f"hnswlib ip M={self.m} ef_construction={self.ef_construction} ef={self.ef_search}"

    def enroll(self, key: str, template: TenprintTemplate) -> None:
        """Adds (or replaces) the gallery tenprint of `key`."""
        if key in self._labels:
            label = self._labels[key]
            self._templates[label] = template
        else:
            label = len(self._keys)
            if label >= self._index.get_max_elements():
                self._index.resize_index(max(1024, 2 * self._index.get_max_elements()))
            self._keys.append(key)
            self._labels[key] = label
            self._templates.append(template)
        self._index.add_items(fused_vector(template)[None, :], np.array([label]))

    def enroll_many(self, items: Iterable[tuple[str, TenprintTemplate]]) -> None:
        """Adds many gallery tenprints (used when the index is rebuilt from the database)."""
        for key, template in items:
            self.enroll(key, template)

    def search(self, probe: TenprintTemplate, *, k: int = 10) -> list[Candidate]:
        """A ranked candidate list: HNSW proposes, exact finger-level fusion scores."""
        if not self._keys:
            return []
        proposals = min(len(self._keys), max(k * 4, 32))
        labels, _ = self._index.knn_query(fused_vector(probe)[None, :], k=proposals)
        scored = [
            Candidate(self._keys[int(label)], match_score(probe, self._templates[int(label)]))
            for label in labels[0]
        ]
        scored.sort(key=lambda c: c.score, reverse=True)
        return scored[:k]

    def identify(self, probe: TenprintTemplate) -> Candidate | None:
        """The best candidate at or above the decision threshold, or None."""
        candidates = self.search(probe, k=1)
        if candidates and candidates[0].score >= self.threshold:
            return candidates[0]
        return None

    def template_of(self, key: str) -> TenprintTemplate:
        """The gallery tenprint of `key` (KeyError when unknown)."""
        return self._templates[self._labels[key]]


def load_gallery(engine: BiometricEngine, rows: Iterable[tuple[str, bytes]]) -> int:
    """Fills an index from stored (key, tenprint bytes) rows; returns how many."""
    count = 0
    for key, blob in rows:
        engine.enroll(key, TenprintTemplate.from_bytes(blob, engine.dim))
        count += 1
    return count


@dataclass
class StagedEnrollments:
    """Index updates held back until the database transaction that caused them commits.

    Search-then-enrol must not interleave (one person would get two identities), so a
    transaction that may enrol runs inside `transaction()`, which serialises them, adds the
    staged templates to their indexes after a commit and forgets them after a rollback.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: list[tuple[BiometricEngine, str, TenprintTemplate]] = field(default_factory=list)

    def stage(self, engine: BiometricEngine, key: str, template: TenprintTemplate) -> None:
        """Adds `template` under `key` to `engine` once the transaction commits."""
        self._pending.append((engine, key, template))

    def staged(self, engine: BiometricEngine) -> list[tuple[str, TenprintTemplate]]:
        """What the running transaction has staged for `engine` so far."""
        return [(key, t) for e, key, t in self._pending if e is engine]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Runs one enrolling transaction at a time; commits or discards its index updates."""
        async with self.lock:
            try:
                yield
            except BaseException:
                self._pending.clear()
                raise
            for engine, key, template in self._pending:
                engine.enroll(key, template)
            self._pending.clear()
