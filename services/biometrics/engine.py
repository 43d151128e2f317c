"""The in-memory 1:N tenprint index (hnswlib over the coarse vector, exact rescoring), saved
and loaded as files.

The coarse vector's centre is learned once the gallery holds `centre_sample` identities, kept
with the index (saved and loaded with it) and never changes after; a rebuild learns it again
from the same records in the same order.

The decision threshold follows the gallery's size, so decisions hold a target FPIR however
large the gallery grows (calibration's `ImpostorTail`): it is computed again from the impostor
tail whenever the gallery has grown or shrunk by more than THRESHOLD_STEP since, and the tail
is fitted from TAIL_SEARCHES searches of the gallery by its own members once it holds
`tail_fit_min` identities, then again each time it has doubled (seconds at a million), the
reference tail (fitted from single comparisons) standing in before. With `background_fit` (the
services' engines) a fit runs on a thread of its own, so enrolments and searches go on while
it searches; the tail in use meanwhile scales to the gallery's size, and the new one is put in
use when it is ready (`settle` waits for it). The tail and the size it was fitted at are saved
and loaded with the index. The threshold never goes below
LONE_FINGER_MAX (one finger alone never matches). A fixed threshold, when given, is used as it
is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import numpy.typing as npt

from .calibration import SEARCH_TAIL_START, TAIL_MIN_COUNT, ImpostorTail
from .params import (
    CENTRE_SAMPLE,
    COARSE_PER_FINGER,
    DEFAULT_FPIR,
    FINGERS,
    LONE_FINGER_MAX,
    REFERENCE_IMPOSTOR_TAIL,
    TAIL_FIT_MIN,
    TAIL_SEARCHES,
    TEMPLATE_DIM,
    THRESHOLD_STEP,
    IndexParams,
)
from .scoring import (
    Candidate,
    coarse_centre,
    coarse_vectors,
    fused_scores,
    rank_proposals,
)
from .template import (
    BoolArray,
    FloatArray,
    TenprintBatch,
    TenprintTemplate,
    merge_templates,
)

INDEX_FILE = "index.hnsw"
TEMPLATES_FILE = "templates.npz"
KEYS_FILE = "keys.txt"
ENGINE_FILES = (INDEX_FILE, TEMPLATES_FILE, KEYS_FILE)
# Candidates a fit's search keeps: the best one that is neither the probe itself nor enrolled
# after the fit was asked for is among them.
FIT_CANDIDATES = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FitSample:
    """What a tail fit searches with, taken under the label lock when the fit is asked for:
    the gallery size then, its labels' end (later labels are not in that gallery), and copies
    of the sampled members' tenprints."""

    size: int
    cutoff: int
    probes: npt.NDArray[np.int64]
    batch: TenprintBatch


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
        threshold: float | None = None,
        target_fpir: float = DEFAULT_FPIR,
        tail: ImpostorTail | None = None,
        tail_fit_min: int = TAIL_FIT_MIN,
        params: IndexParams | None = None,
        initial_capacity: int = 1024,
        num_threads: int = 2,
        centre_sample: int = CENTRE_SAMPLE,
        background_fit: bool = False,
    ) -> None:
        if centre_sample < 1:
            raise ValueError(f"centre_sample must be at least 1, got {centre_sample}")
        if not 0 < target_fpir < 1:
            raise ValueError(f"target FPIR must be in (0, 1), got {target_fpir}")
        self.dim = dim
        self.centre_sample = centre_sample
        # Per-finger centre of the coarse values; None until the gallery reaches centre_sample.
        self._centre: FloatArray | None = None
        self.fixed_threshold = threshold
        self.target_fpir = target_fpir
        if tail_fit_min * SEARCH_TAIL_START < 10 * TAIL_MIN_COUNT:
            raise ValueError(f"tail_fit_min must be large enough to fit a tail, got {tail_fit_min}")
        self.tail_fit_min = tail_fit_min
        self._reference_tail = tail or ImpostorTail(*REFERENCE_IMPOSTOR_TAIL)
        self._tail = self._reference_tail
        # The gallery size the tail was fitted at (0: the reference tail), and the size the
        # threshold in use was computed for.
        self._tail_size = 0
        self._threshold_size = 0
        self._threshold = LONE_FINGER_MAX if threshold is None else threshold
        # Fits off the enrolling call: the size the latest fit was asked for, the thread running
        # fits (None when none runs), and a generation that `load` and `clear` move on, so a
        # fit of the gallery they replaced is dropped.
        self.background_fit = background_fit
        self._fit_due = 0
        self._fit_worker: threading.Thread | None = None
        self._generation = 0
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
        self._follow_size()

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
    def threshold(self) -> float:
        """The decision threshold in use: fixed, or the one for `target_fpir` at the gallery
        size it was last computed for (`threshold_gallery_size`)."""
        return self._threshold

    @property
    def threshold_gallery_size(self) -> int:
        """The gallery size the threshold in use was computed for (the current size when
        the threshold is fixed)."""
        return len(self) if self.fixed_threshold is not None else self._threshold_size

    @property
    def impostor_tail(self) -> ImpostorTail:
        """The impostor tail thresholds come from (the reference one until fitted)."""
        return self._tail

    @property
    def tail_gallery_size(self) -> int:
        """The gallery size the impostor tail was fitted at (0: the reference tail)."""
        return self._tail_size

    def threshold_for(self, fpir: float) -> float:
        """The threshold for a target FPIR at the gallery's current size (never below
        LONE_FINGER_MAX, so one finger alone never matches)."""
        return max(LONE_FINGER_MAX, self._tail.threshold_for(fpir, len(self)))

    def _follow_size(self) -> None:
        """Fits the tail again when the gallery has doubled since (from `tail_fit_min`), and
        computes the threshold again when the size has moved by more than THRESHOLD_STEP.
        Called under the label lock; a background fit only starts there."""
        size = len(self._labels)
        if size >= self.tail_fit_min and size >= 2 * max(self._tail_size, self._fit_due):
            self._fit_due = size
            if self.background_fit:
                self._start_fitting()
            else:
                self._tail, self._tail_size = self._fit_tail(self._fit_sample(size)), size
                self._threshold_size = 0
        self._follow_threshold()

    def _follow_threshold(self) -> None:
        """Computes the threshold again when the size has moved by more than THRESHOLD_STEP
        from the one it was computed for (0: computes it now)."""
        if self.fixed_threshold is not None:
            return
        size = len(self._labels)
        moved = abs(size - self._threshold_size) > THRESHOLD_STEP * self._threshold_size
        if moved or self._threshold_size == 0:
            self._threshold = self.threshold_for(self.target_fpir)
            self._threshold_size = size

    def _fit_sample(self, size: int) -> _FitSample:
        """The members a fit searches with (under the label lock; seeded by the size, so a
        gallery gives the same sample)."""
        used = len(self._keys)
        rows = np.flatnonzero(self._alive[:used])
        rng = np.random.default_rng(size)
        probes = np.sort(rng.choice(rows, size=min(TAIL_SEARCHES, rows.size), replace=False))
        batch = TenprintBatch(
            vectors=self._vectors[probes],
            present=self._present[probes],
            quality=self._quality[probes],
        )
        return _FitSample(size=size, cutoff=used, probes=probes, batch=batch)

    def _fit_tail(self, sample: _FitSample) -> ImpostorTail:
        """Fits the impostor tail from searches of the gallery by its own members: each
        sampled identity's best candidate other than itself (and other than identities
        enrolled after the fit was asked for) is the best impostor score of a non-mated search
        of the rest. Needs no lock: the searches take the index's read lock."""
        labels, scores = self.search_labels(
            sample.batch, k=FIT_CANDIDATES, num_threads=self.num_threads
        )
        keep = (labels >= 0) & (labels < sample.cutoff) & (labels != sample.probes[:, None])
        best = np.max(np.where(keep, scores, -np.inf), axis=1)
        best = best[np.isfinite(best)]
        return ImpostorTail.fit(
            best, best.size, start_share=SEARCH_TAIL_START, per=max(1, sample.size - 1)
        )

    def _start_fitting(self) -> None:
        """Starts the fitting thread unless one runs (under the label lock); a running one
        takes the latest size asked for when it finishes its fit."""
        if self._fit_worker is None:
            self._fit_worker = threading.Thread(
                target=self._fit_in_background,
                args=(self._generation,),
                name="impostor-tail-fit",
                daemon=True,
            )
            self._fit_worker.start()

    def _fit_in_background(self, generation: int) -> None:
        """Fits for the latest size asked for until none is left, then puts each tail in use;
        a failed fit is logged and the tail in use stays (the next doubling asks again)."""
        me = threading.current_thread()
        try:
            while True:
                with self._labels_lock:
                    if generation != self._generation or self._fit_due <= self._tail_size:
                        return
                    sample = self._fit_sample(self._fit_due)
                tail = self._fit_tail(sample)
                with self._labels_lock:
                    if generation != self._generation:
                        return
                    self._tail, self._tail_size = tail, sample.size
                    self._threshold_size = 0
                    self._follow_threshold()
        except Exception:
            log.exception("fitting the impostor tail failed; the tail in use stays")
            with self._labels_lock:
                if generation == self._generation:
                    self._fit_due = self._tail_size
        finally:
            with self._labels_lock:
                if self._fit_worker is me:
                    self._fit_worker = None

    @property
    def fitting(self) -> bool:
        """Whether a background fit of the impostor tail is running."""
        return self._fit_worker is not None

    def settle(self, timeout: float | None = None) -> bool:
        """Waits until no background fit runs (its tail then in use); False on timeout."""
        while True:
            with self._labels_lock:
                worker = self._fit_worker
            if worker is None:
                return True
            worker.join(timeout)
            if worker.is_alive():
                return False

    def _replaced(self) -> None:
        """The gallery was replaced (under the label lock): a running fit's tail is dropped."""
        self._generation += 1
        self._fit_worker = None
        self._fit_due = self._tail_size

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
                self._follow_size()
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
        with self._labels_lock:
            self._follow_size()

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
            self._follow_size()
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
                proposals = self._propose(self._coarse(batch.vectors), num_threads)
            return rank_proposals(self._vectors, self._present, batch, proposals, k)

    def _propose(self, coarse: FloatArray, num_threads: int) -> npt.NDArray[np.int64]:
        """HNSW's `rescore` nearest labels of each coarse vector (under the read lock), -1 where
        it found fewer. hnswlib refuses a whole batch when one row found fewer than asked (a
        search that raced an insertion, seen in a fit beside enrolments at 100,000): then row
        by row, asking fewer where one still finds fewer."""
        want = self.params.rescore
        try:
            found, _ = self._index.knn_query(coarse, k=want, num_threads=num_threads)
            labels: npt.NDArray[np.int64] = found.astype(np.int64)
            return labels
        except RuntimeError:
            proposals = np.full((coarse.shape[0], want), -1, dtype=np.int64)
            for row in range(coarse.shape[0]):
                k = want
                while k >= 1:
                    try:
                        found, _ = self._index.knn_query(coarse[row : row + 1], k=k)
                    except RuntimeError:
                        k //= 2
                        continue
                    proposals[row, :k] = found[0]
                    break
            return proposals

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
            threshold = self.threshold_for(target_fpir)
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
                impostor_tail=self._tail.to_array(),
                impostor_tail_size=np.int64(self._tail_size),
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
            # An index saved before tails were kept fits its tail again from its gallery.
            tail = (
                ImpostorTail.from_array(data["impostor_tail"])
                if "impostor_tail" in data
                else self._reference_tail
            )
            tail_size = int(data["impostor_tail_size"]) if "impostor_tail_size" in data else 0
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
            self._tail, self._tail_size = tail, tail_size
            self._threshold_size = 0
            self._replaced()
        with self._labels_lock:
            self._follow_size()

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
            self._tail, self._tail_size = self._reference_tail, 0
            self._threshold_size = 0
            self._replaced()
        with self._labels_lock:
            self._follow_size()


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
