"""The tenprint biometric engine shared by the SIB's state file, IAFIS and IDENT.

A tenprint is ten finger slots (FGP 1..10); each present finger carries a float32 feature
template of `TEMPLATE_DIM` values, and an absent finger (amputated, unprintable) is an empty
slot: a presence mask says so, and it takes no part in any score. Identification is 1:N: an HNSW
index (hnswlib, inner product) over a coarse vector (the first 8 values of each finger)
proposes `rescore` candidates, and each is rescored exactly with the full templates as
Σ cos over the fingers present in both / sqrt(n_common · 10). Decisions compare that score
with a threshold calibrated to a target false-positive identification rate (FPIR).

The coarse vector is centred: each finger's 8 values less that finger's mean over the gallery
(the first `centre_sample` identities enrolled), then the 80 values scaled to unit length. The
shared pattern-class offset otherwise squeezes every coarse vector into one narrow cone, which
HNSW links poorly. The centre is learned once, kept with the index (saved and loaded with it)
and never changes after; a rebuild learns it again from the same records in the same order.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import numpy.typing as npt

from scfed.common.v1 import common_pb2
from services.runtime.errors import InvalidArgument

FINGERS = 10
TEMPLATE_DIM = 32
MODEL_VERSION = "scfed-synthetic-tenprint-2"
# Values of each finger's template that go into the coarse HNSW vector.
COARSE_PER_FINGER = 8
# How the coarse vector is made; a saved index made another way is stale.
COARSE_VERSION = "first8-centred-1"
# Identities whose coarse values give the per-finger centre (learned once the gallery has them).
CENTRE_SAMPLE = 10_000
# Thresholds at target FPIRs, from a calibration of non-mated searches against a gallery of
# 100,000 (scfed bench biometrics); the default decision threshold is the one at FPIR 0.1 %.
DEFAULT_OPERATING_POINTS: dict[float, float] = {
    1e-4: 0.475,
    1e-3: 0.464,
    1e-2: 0.436,
    1e-1: 0.405,
}
DEFAULT_FPIR = 1e-3
DEFAULT_THRESHOLD = DEFAULT_OPERATING_POINTS[DEFAULT_FPIR]
INDEX_FILE = "index.hnsw"
TEMPLATES_FILE = "templates.npz"
KEYS_FILE = "keys.txt"
ENGINE_FILES = (INDEX_FILE, TEMPLATES_FILE, KEYS_FILE)
# Probes rescored together (bounds the memory of the gathered candidate templates).
RESCORE_CHUNK = 64

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


def coarse_vectors(vectors: FloatArray, centre: FloatArray | None = None) -> FloatArray:
    """The HNSW vector: the first COARSE_PER_FINGER values of each finger, unit length.

    The templates' features come in decreasing-variance order, so these values carry most of
    a finger's identity; absent fingers contribute zeros. With a `centre` (FINGERS,
    COARSE_PER_FINGER), each present finger's values are taken less its centre first. Works
    on (n, 10, dim) or (10, dim).
    """
    values = np.asarray(vectors[..., :COARSE_PER_FINGER], dtype=np.float32)
    if centre is not None:
        present = np.any(vectors != 0, axis=-1, keepdims=True)
        values = np.where(present, values - centre.astype(np.float32), np.float32(0.0))
    flat = np.ascontiguousarray(values, dtype=np.float32)
    flat = flat.reshape(*vectors.shape[:-2], FINGERS * COARSE_PER_FINGER)
    norms = np.linalg.norm(flat, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: FloatArray = flat / norms
    return unit


def coarse_centre(vectors: FloatArray, present: BoolArray) -> FloatArray:
    """Each finger's mean coarse values over the tenprints (n, 10, dim) that hold it.

    Shape (FINGERS, COARSE_PER_FINGER); zeros for a finger no tenprint holds. Summed in
    float64, so the same tenprints always give the same centre.
    """
    values = vectors[..., :COARSE_PER_FINGER].astype(np.float64)
    mask = present[..., None].astype(np.float64)
    totals = (values * mask).sum(axis=0)
    counts = np.maximum(mask.sum(axis=0), 1.0)
    centre: FloatArray = (totals / counts).astype(np.float32)
    return centre


def fused_scores(
    probe_vectors: FloatArray,
    probe_present: BoolArray,
    gallery_vectors: FloatArray,
    gallery_present: BoolArray,
) -> FloatArray:
    """Fused scores of one probe (10, dim) against gallery tenprints (n, 10, dim).

    Σ cos over the fingers present in both / sqrt(n_common · 10): the mean cosine when all ten
    are common, shrunk when few are, so a match on one or two fingers cannot pass the
    threshold by itself. Absent fingers are zero vectors in the arrays and never count.
    """
    n = gallery_vectors.shape[0]
    # Absent fingers are zero rows, so one dot product of the flattened tenprints sums the
    # cosines of exactly the fingers present in both.
    cosines = gallery_vectors.reshape(n, -1) @ probe_vectors.reshape(-1)
    common = (gallery_present & probe_present).sum(axis=-1)
    scores: FloatArray = (cosines / np.sqrt(np.maximum(common, 1) * FINGERS)).astype(np.float32)
    scores[common == 0] = 0.0
    return scores


def rank_proposals(
    gallery_vectors: FloatArray,
    gallery_present: BoolArray,
    batch: TenprintBatch,
    proposals: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Rescores proposed labels (n, r) exactly; the best `k` of each row, best first."""
    n, width = proposals.shape
    out_labels = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    top = min(k, width)
    flat_gallery = gallery_vectors.reshape(gallery_vectors.shape[0], -1)
    for start in range(0, n, RESCORE_CHUNK):
        stop = min(n, start + RESCORE_CHUNK)
        rows = proposals[start:stop]
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        probe_flat = batch.vectors[start:stop].reshape(stop - start, -1)
        # (b, r, 10*dim) . (b, 10*dim): the cosines of the fingers both hold, summed.
        cosines = np.einsum("brx,bx->br", flat_gallery[safe], probe_flat)
        common = (gallery_present[safe] & batch.present[start:stop, None, :]).sum(axis=-1)
        scores = (cosines / np.sqrt(np.maximum(common, 1) * FINGERS)).astype(np.float32)
        scores[common == 0] = 0.0
        scores[~valid] = -np.inf
        if top < width:
            order = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        else:
            order = np.broadcast_to(np.arange(width), scores.shape)
        picked = np.take_along_axis(scores, order, axis=1)
        rank = np.argsort(-picked, axis=1, kind="stable")
        order = np.take_along_axis(order, rank, axis=1)
        out_scores[start:stop, :top] = np.take_along_axis(scores, order, axis=1)
        labels = np.take_along_axis(rows, order, axis=1)
        out_labels[start:stop, :top] = np.where(
            np.isfinite(out_scores[start:stop, :top]), labels, -1
        )
    return out_labels, out_scores


def match_score(probe: TenprintTemplate, gallery: TenprintTemplate) -> float:
    """The fused score of two tenprints (see `fused_scores`)."""
    return float(
        fused_scores(probe.vectors, probe.present, gallery.vectors[None], gallery.present[None])[0]
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


@dataclass(frozen=True)
class Candidate:
    """One entry of a ranked candidate list."""

    key: str
    score: float


@dataclass(frozen=True)
class Calibration:
    """Top impostor scores of non-mated searches, to turn a target FPIR into a threshold.

    FPIR is the share of non-mated searches whose best candidate scores at or above the
    threshold; the threshold for a target FPIR is the (1 - FPIR) quantile of those scores.
    """

    impostor_top_scores: FloatArray

    @classmethod
    def from_impostor_scores(cls, scores: Iterable[float] | FloatArray) -> Calibration:
        """A calibration from the best score of each non-mated search."""
        given = scores if isinstance(scores, np.ndarray) else list(scores)
        values = np.sort(np.asarray(given, dtype=np.float32))
        if values.size == 0:
            raise ValueError("a calibration needs at least one non-mated search")
        return cls(impostor_top_scores=values)

    def threshold_for(self, fpir: float) -> float:
        """The threshold whose FPIR on these searches is at most `fpir`."""
        if not 0 < fpir < 1:
            raise ValueError(f"target FPIR must be in (0, 1), got {fpir}")
        values = self.impostor_top_scores
        allowed = int(np.floor(fpir * values.size))
        # Scores strictly above the (allowed+1)-th highest may pass.
        edge = float(values[values.size - allowed - 1])
        return float(np.nextafter(np.float32(edge), np.float32(2.0)))

    def fpir_at(self, threshold: float) -> float:
        """The share of these non-mated searches that would pass `threshold`."""
        values = self.impostor_top_scores
        passed = values.size - int(np.searchsorted(values, threshold, side="left"))
        return passed / values.size


def threshold_for_fpir(fpir: float) -> float:
    """The default threshold for a target FPIR, interpolated in log FPIR between the
    operating points of the reference calibration (DEFAULT_OPERATING_POINTS)."""
    if not 0 < fpir < 1:
        raise ValueError(f"target FPIR must be in (0, 1), got {fpir}")
    points = sorted(DEFAULT_OPERATING_POINTS.items())
    xs = np.log10([p for p, _ in points])
    ys = [t for _, t in points]
    return float(np.interp(np.log10(fpir), xs, ys))


@dataclass(frozen=True)
class IndexParams:
    """HNSW parameters (chosen by measurement: see README, Biometrics)."""

    m: int = 32
    ef_construction: int = 100
    ef: int = 512
    rescore: int = 32

    def searching(self, *, ef: int | None = None, rescore: int | None = None) -> IndexParams:
        """These parameters with another search breadth and proposals rescored (None keeps
        the current one); ef is raised to `rescore` when lower, as hnswlib searches with at
        least k."""
        new_rescore = self.rescore if rescore is None else rescore
        new_ef = self.ef if ef is None else ef
        if new_rescore < 1 or new_ef < 1:
            raise ValueError(f"ef and rescore must be at least 1, got {new_ef} and {new_rescore}")
        return replace(self, ef=max(new_ef, new_rescore), rescore=new_rescore)


class _ReadWriteLock:
    """Many searches and enrolments at once; a resize, delete or save alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        """Shared access (hnswlib allows concurrent add_items and knn_query)."""
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Exclusive access."""
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class BiometricEngine:
    """An in-memory 1:N tenprint index; the owning service's database is the source of truth.

    Templates live in contiguous arrays indexed by an integer label; hnswlib holds the coarse
    vector of every label. A search asks HNSW for `rescore` proposals and rescores them exactly
    with the full templates (all of the gallery, exactly, while it is smaller than that).
    """

    def __init__(
        self,
        *,
        dim: int = TEMPLATE_DIM,
        threshold: float = DEFAULT_THRESHOLD,
        params: IndexParams | None = None,
        initial_capacity: int = 1024,
        num_threads: int = 2,
        centre_sample: int = CENTRE_SAMPLE,
    ) -> None:
        if centre_sample < 1:
            raise ValueError(f"centre_sample must be at least 1, got {centre_sample}")
        self.dim = dim
        self.centre_sample = centre_sample
        # Per-finger centre of the coarse values; None until the gallery reaches centre_sample.
        self._centre: FloatArray | None = None
        self.threshold = threshold
        self.params = params or IndexParams()
        self.num_threads = num_threads
        self._lock = _ReadWriteLock()
        self._labels_lock = threading.Lock()
        capacity = max(16, initial_capacity)
        self._index = self._new_index(capacity)
        self._vectors = np.zeros((capacity, FINGERS, dim), dtype=np.float32)
        self._present = np.zeros((capacity, FINGERS), dtype=bool)
        self._quality = np.zeros((capacity, FINGERS), dtype=np.uint8)
        self._alive = np.zeros(capacity, dtype=bool)
        self._keys: list[str | None] = []
        self._labels: dict[str, int] = {}

    def _new_index(self, capacity: int) -> Any:
        index = hnswlib.Index(space="ip", dim=FINGERS * COARSE_PER_FINGER)
        index.init_index(
            max_elements=capacity,
            ef_construction=self.params.ef_construction,
            M=self.params.m,
            random_seed=7,
        )
        index.set_ef(self.params.ef)
        index.set_num_threads(self.num_threads)
        return index

    @property
    def centre(self) -> FloatArray | None:
        """The per-finger centre of the coarse vectors (None while not learned yet)."""
        return None if self._centre is None else self._centre.copy()

    def _coarse(self, vectors: FloatArray) -> FloatArray:
        return coarse_vectors(vectors, self._centre)

    @property
    def m(self) -> int:
        """HNSW links per node."""
        return self.params.m

    @property
    def ef_search(self) -> int:
        """HNSW search breadth."""
        return self.params.ef

    @property
    def ef_construction(self) -> int:
        """HNSW construction breadth."""
        return self.params.ef_construction

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, key: object) -> bool:
        return key in self._labels

    def keys(self) -> list[str]:
        """The keys enrolled, in label order."""
        return [k for k in self._keys if k is not None]

    def describe(self) -> str:
        """The index parameters, for Info."""
        p = self.params
        return (
            f"hnswlib ip coarse={FINGERS}x{COARSE_PER_FINGER} "
            f"{'centred' if self._centre is not None else 'uncentred'} M={p.m} "
            f"ef_construction={p.ef_construction} ef={p.ef} rescore={p.rescore}"
        )

    def tune(self, *, ef: int | None = None, rescore: int | None = None) -> None:
        """Changes the search breadth (ef) and the proposals rescored, without a rebuild.

        The graph (M, ef_construction) stays as built; ef is raised to `rescore` when lower,
        as hnswlib searches with at least k.
        """
        params = self.params.searching(ef=ef, rescore=rescore)
        with self._lock.write():
            self.params = params
            self._index.set_ef(params.ef)

    def _reserve(self, extra: int) -> None:
        """Grows the arrays and the index so `extra` more labels fit (doubling)."""
        need = len(self._keys) + extra
        capacity = self._vectors.shape[0]
        if need <= capacity:
            return
        new_capacity = max(need, 2 * capacity)
        with self._lock.write():
            self._index.resize_index(new_capacity)
            for name in ("_vectors", "_present", "_quality", "_alive"):
                old = getattr(self, name)
                grown = np.zeros((new_capacity, *old.shape[1:]), dtype=old.dtype)
                grown[: old.shape[0]] = old
                setattr(self, name, grown)

    def enroll(self, key: str, template: TenprintTemplate) -> None:
        """Adds (or replaces) the gallery tenprint of `key`."""
        self.enroll_batch([key], TenprintBatch.of([template]))

    def enroll_batch(self, keys: Sequence[str], batch: TenprintBatch, chunk: int = 50_000) -> None:
        """Adds (or replaces) many gallery tenprints; hnswlib inserts them on `num_threads`."""
        if len(keys) != len(batch):
            raise ValueError(f"{len(keys)} keys for {len(batch)} tenprints")
        with self._labels_lock:
            self._reserve(len(keys))
            labels = np.empty(len(keys), dtype=np.int64)
            for i, key in enumerate(keys):
                label = self._labels.get(key)
                if label is None:
                    label = len(self._keys)
                    self._keys.append(key)
                    self._labels[key] = label
                labels[i] = label
            # Under the label lock, so a concurrent resize cannot swap the arrays mid-write.
            self._vectors[labels] = batch.vectors
            self._present[labels] = batch.present
            self._quality[labels] = batch.quality
            self._alive[labels] = True
            if self._centre is None and len(self._keys) >= self.centre_sample:
                # Learns the centre from the first centre_sample labels and re-inserts every
                # label (this batch included) centred.
                self._learn_centre()
                return
        with self._lock.read():
            for start in range(0, len(keys), chunk):
                part = slice(start, start + chunk)
                self._index.add_items(
                    self._coarse(batch.vectors[part]),
                    labels[part],
                    num_threads=self.num_threads,
                    replace_deleted=False,
                )

    def _learn_centre(self, chunk: int = 50_000) -> None:
        """Sets the centre and rebuilds the HNSW index with it (under the label lock)."""
        sample = slice(0, self.centre_sample)
        live = self._alive[sample]
        centre = coarse_centre(self._vectors[sample][live], self._present[sample][live])
        used = len(self._keys)
        with self._lock.write():
            self._centre = centre
            index = self._new_index(self._vectors.shape[0])
            for start in range(0, used, chunk):
                stop = min(used, start + chunk)
                index.add_items(
                    self._coarse(self._vectors[start:stop]),
                    np.arange(start, stop),
                    num_threads=self.num_threads,
                    replace_deleted=False,
                )
            for label in np.flatnonzero(~self._alive[:used]):
                index.mark_deleted(int(label))
            self._index = index

    def enroll_many(self, items: Iterable[tuple[str, TenprintTemplate]]) -> None:
        """Adds many gallery tenprints given one by one."""
        pairs = list(items)
        if pairs:
            self.enroll_batch([k for k, _ in pairs], TenprintBatch.of([t for _, t in pairs]))

    def add_encounter(self, key: str, template: TenprintTemplate) -> TenprintTemplate:
        """Merges a new encounter's prints into `key`'s tenprint; returns the merged one."""
        merged = merge_templates(self.template_of(key), template)
        self.enroll(key, merged)
        return merged

    def delete(self, key: str) -> None:
        """Removes `key` from the gallery (KeyError when unknown)."""
        with self._labels_lock:
            label = self._labels.pop(key)
            self._keys[label] = None
            self._alive[label] = False
        with self._lock.write():
            self._index.mark_deleted(label)

    def template_of(self, key: str) -> TenprintTemplate:
        """The gallery tenprint of `key` (KeyError when unknown)."""
        label = self._labels[key]
        return TenprintTemplate(
            vectors=self._vectors[label].copy(),
            present=self._present[label].copy(),
            quality=self._quality[label].copy(),
        )

    def _rescore(
        self, probe_vectors: FloatArray, probe_present: BoolArray, labels: npt.NDArray[np.int64]
    ) -> FloatArray:
        return fused_scores(
            probe_vectors, probe_present, self._vectors[labels], self._present[labels]
        )

    def search_labels(
        self, batch: TenprintBatch, *, k: int = 10, num_threads: int = 1
    ) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Ranked labels and scores, shape (n, k) each (label -1 where fewer exist)."""
        n = len(batch)
        out_labels = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        live = len(self._labels)
        if live == 0 or n == 0:
            return out_labels, out_scores
        with self._lock.read():
            if live <= self.params.rescore:
                proposals = np.tile(np.flatnonzero(self._alive[: len(self._keys)]), (n, 1))
            else:
                found, _ = self._index.knn_query(
                    self._coarse(batch.vectors), k=self.params.rescore, num_threads=num_threads
                )
                proposals = found.astype(np.int64)
            return rank_proposals(self._vectors, self._present, batch, proposals, k)

    def search_batch(
        self, batch: TenprintBatch, *, k: int = 10, num_threads: int = 1
    ) -> list[list[Candidate]]:
        """Ranked candidate lists for many probes."""
        labels, scores = self.search_labels(batch, k=k, num_threads=num_threads)
        return [
            [
                Candidate(key, float(s))
                for label, s in zip(row_labels, row_scores, strict=True)
                if label >= 0 and (key := self._keys[int(label)]) is not None
            ]
            for row_labels, row_scores in zip(labels, scores, strict=True)
        ]

    def search(self, probe: TenprintTemplate, *, k: int = 10) -> list[Candidate]:
        """A ranked candidate list: HNSW proposes, exact finger-level fusion scores."""
        return self.search_batch(TenprintBatch.of([probe]), k=k)[0]

    def identify(
        self,
        probe: TenprintTemplate,
        *,
        threshold: float | None = None,
        target_fpir: float | None = None,
    ) -> Candidate | None:
        """The best candidate at or above the decision threshold (or the one for
        `target_fpir`), or None."""
        if target_fpir is not None:
            threshold = threshold_for_fpir(target_fpir)
        limit = self.threshold if threshold is None else threshold
        candidates = self.search(probe, k=1)
        if candidates and candidates[0].score >= limit:
            return candidates[0]
        return None

    def save(self, directory: Path) -> dict[str, str]:
        """Writes the index and templates to `directory`; returns file name -> SHA-256."""
        directory.mkdir(parents=True, exist_ok=True)
        used = len(self._keys)
        with self._lock.write():
            self._index.save_index(str(directory / INDEX_FILE))
            np.savez(
                directory / TEMPLATES_FILE,
                vectors=self._vectors[:used],
                present=self._present[:used],
                quality=self._quality[:used],
                alive=self._alive[:used],
                coarse_centre=(
                    np.zeros((0, COARSE_PER_FINGER), dtype=np.float32)
                    if self._centre is None
                    else self._centre
                ),
            )
            (directory / KEYS_FILE).write_text(
                "\n".join(k if k is not None else "" for k in self._keys), encoding="utf-8"
            )
        return {name: file_sha256(directory / name) for name in ENGINE_FILES}

    def load(self, directory: Path) -> None:
        """Replaces this engine's content with a saved one (raises on any damage)."""
        text = (directory / KEYS_FILE).read_text(encoding="utf-8")
        keys: list[str | None] = [k or None for k in text.split("\n")] if text else []
        with np.load(directory / TEMPLATES_FILE) as data:
            vectors, present = data["vectors"], data["present"]
            quality, alive = data["quality"], data["alive"]
            saved_centre = data["coarse_centre"]
        used = len(keys)
        if vectors.shape != (used, FINGERS, self.dim) or alive.shape != (used,):
            raise ValueError(f"saved templates do not fit {used} keys of dimension {self.dim}")
        centre: FloatArray | None
        if saved_centre.shape == (0, COARSE_PER_FINGER):
            centre = None
        elif saved_centre.shape == (FINGERS, COARSE_PER_FINGER):
            centre = saved_centre.astype(np.float32)
        else:
            raise ValueError(f"saved coarse centre has shape {saved_centre.shape}")
        capacity = max(16, used)
        index = hnswlib.Index(space="ip", dim=FINGERS * COARSE_PER_FINGER)
        index.load_index(str(directory / INDEX_FILE), max_elements=capacity)
        if index.get_current_count() != used:
            raise ValueError(f"saved index holds {index.get_current_count()} of {used} labels")
        index.set_ef(self.params.ef)
        index.set_num_threads(self.num_threads)
        with self._labels_lock, self._lock.write():
            self._index = index
            self._vectors = np.zeros((capacity, FINGERS, self.dim), dtype=np.float32)
            self._vectors[:used] = vectors
            self._present = np.zeros((capacity, FINGERS), dtype=bool)
            self._present[:used] = present
            self._quality = np.zeros((capacity, FINGERS), dtype=np.uint8)
            self._quality[:used] = quality
            self._alive = np.zeros(capacity, dtype=bool)
            self._alive[:used] = alive
            self._keys = keys
            self._labels = {k: i for i, k in enumerate(keys) if k is not None}
            self._centre = centre

    def clear(self) -> None:
        """Forgets everything (before a rebuild)."""
        with self._labels_lock, self._lock.write():
            self._index = self._new_index(1024)
            self._vectors = np.zeros((1024, FINGERS, self.dim), dtype=np.float32)
            self._present = np.zeros((1024, FINGERS), dtype=bool)
            self._quality = np.zeros((1024, FINGERS), dtype=np.uint8)
            self._alive = np.zeros(1024, dtype=bool)
            self._keys = []
            self._labels = {}
            self._centre = None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def load_gallery(engine: BiometricEngine, rows: Iterable[tuple[str, bytes]]) -> int:
    """Fills an index from stored (key, tenprint bytes) rows in batches; returns how many."""
    count = 0
    keys: list[str] = []
    templates: list[TenprintTemplate] = []
    for key, blob in rows:
        keys.append(key)
        templates.append(TenprintTemplate.from_bytes(blob, engine.dim))
        if len(keys) >= 10_000:
            engine.enroll_batch(keys, TenprintBatch.of(templates))
            count += len(keys)
            keys, templates = [], []
    if keys:
        engine.enroll_batch(keys, TenprintBatch.of(templates))
        count += len(keys)
    return count


@dataclass
class StagedEnrollments:
    """Index updates held back until the database transaction that caused them commits.

    Search-then-enrol must not interleave (one person would get two identities), so a
    transaction that may enrol runs inside `transaction()`, which serialises them, applies the
    staged enrolments and deletions to their indexes after a commit and forgets them after a
    rollback.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: list[tuple[BiometricEngine, str, TenprintTemplate | None]] = field(
        default_factory=list
    )

    def stage(self, engine: BiometricEngine, key: str, template: TenprintTemplate) -> None:
        """Adds (or replaces) `template` under `key` in `engine` once the transaction commits."""
        self._pending.append((engine, key, template))

    def stage_delete(self, engine: BiometricEngine, key: str) -> None:
        """Removes `key` from `engine` once the transaction commits."""
        self._pending.append((engine, key, None))

    def staged(self, engine: BiometricEngine) -> list[tuple[str, TenprintTemplate]]:
        """What the running transaction has staged for `engine` so far (latest per key)."""
        latest: dict[str, TenprintTemplate | None] = {}
        for e, key, t in self._pending:
            if e is engine:
                latest[key] = t
        return [(key, t) for key, t in latest.items() if t is not None]

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
                if template is None:
                    if key in engine:
                        engine.delete(key)
                else:
                    engine.enroll(key, template)
            self._pending.clear()
