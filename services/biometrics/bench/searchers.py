"""The searchers compared: our engine, exact numpy search and faiss-cpu HNSW, each timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import BiometricEngine, file_sha256
from ..params import CENTRE_SAMPLE, COARSE_PER_FINGER, FINGERS, IndexParams
from ..scoring import coarse_centre, coarse_vectors, fused_scores, rank_proposals
from ..template import TenprintBatch
from .exact import exact_top1
from .progress import Bars
from .workload import Labels, Scores, Workload


@dataclass
class Results:
    """What one searcher answered: top labels and scores of every probe (mated first)."""

    labels: Labels
    scores: Scores
    latencies_ms: list[float]
    batch_s: float
    enroll_s: float
    bytes_total: int
    save_s: float | None
    load_s: float | None


def _timed_searches(
    search: Callable[[TenprintBatch], tuple[Labels, Scores]],
    probes: TenprintBatch,
    bars: Bars,
    description: str,
    limit: int | None = None,
) -> tuple[Labels, Scores, list[float]]:
    n = len(probes) if limit is None else min(limit, len(probes))
    labels = np.full(len(probes), -1, dtype=np.int64)
    scores = np.full(len(probes), -np.inf, dtype=np.float32)
    latencies: list[float] = []
    with bars.task(description, n) as advance:
        for i in range(n):
            one = TenprintBatch(
                vectors=probes.vectors[i : i + 1],
                present=probes.present[i : i + 1],
                quality=probes.quality[i : i + 1],
            )
            started = time.perf_counter()
            top_labels, top_scores = search(one)
            latencies.append((time.perf_counter() - started) * 1000)
            labels[i], scores[i] = top_labels[0, 0], top_scores[0, 0]
            advance(1)
    return labels, scores, latencies


def enrol(engine: BiometricEngine, gallery: TenprintBatch, bars: Bars, description: str) -> float:
    """Enrols the gallery (keys "0".."n-1") in chunks; returns the seconds it took."""
    n = len(gallery)
    chunk = 50_000
    started = time.perf_counter()
    with bars.task(description, n) as advance:
        for start in range(0, n, chunk):
            part = slice(start, min(n, start + chunk))
            keys = [str(i) for i in range(part.start, part.stop)]
            engine.enroll_batch(
                keys,
                TenprintBatch(
                    vectors=gallery.vectors[part],
                    present=gallery.present[part],
                    quality=gallery.quality[part],
                ),
            )
            advance(part.stop - part.start)
    return time.perf_counter() - started


def run_ours(work: Workload, params: IndexParams, bars: Bars, scratch: Path) -> Results:
    """Our engine: enrol, search one by one, search in a batch, save and load."""
    n = len(work.gallery)
    engine = BiometricEngine(params=params, initial_capacity=n)
    enroll_s = enrol(engine, work.gallery, bars, "ours: enrol (hnswlib, 2 threads)")
    probes = work.probes
    labels, scores, latencies = _timed_searches(
        lambda b: engine.search_labels(b, k=1), probes, bars, "ours: searches on one thread"
    )
    started = time.perf_counter()
    engine.search_labels(probes, k=1, num_threads=2)
    batch_s = time.perf_counter() - started
    directory = scratch / "ours"
    started = time.perf_counter()
    hashes = engine.save(directory)
    save_s = time.perf_counter() - started
    bytes_total = sum((directory / name).stat().st_size for name in hashes)
    engine.clear()
    started = time.perf_counter()
    reloaded = BiometricEngine(params=params)
    for name, digest in hashes.items():
        if file_sha256(directory / name) != digest:
            raise RuntimeError(f"{name} changed between save and load")
    reloaded.load(directory)
    load_s = time.perf_counter() - started
    if len(reloaded) != n:
        raise RuntimeError(f"reloaded {len(reloaded)} of {n} identities")
    return Results(labels, scores, latencies, batch_s, enroll_s, bytes_total, save_s, load_s)


def run_exact(work: Workload, bars: Bars, scratch: Path) -> Results:
    """Exact numpy search: the same fused score over the whole gallery."""
    n = len(work.gallery)
    started = time.perf_counter()
    gallery = TenprintBatch(
        vectors=np.ascontiguousarray(work.gallery.vectors),
        present=work.gallery.present.copy(),
        quality=work.gallery.quality.copy(),
    )
    enroll_s = time.perf_counter() - started
    probes = work.probes

    def one(b: TenprintBatch) -> tuple[Labels, Scores]:
        scores = fused_scores(b.vectors[0], b.present[0], gallery.vectors, gallery.present)
        arg = int(scores.argmax())
        return np.array([[arg]]), np.array([[scores[arg]]], dtype=np.float32)

    limit = 50 if n >= 500_000 else 200
    _, _, latencies = _timed_searches(one, probes, bars, "exact: searches on one thread", limit)
    started = time.perf_counter()
    labels, scores = exact_top1(gallery, probes, bars)
    batch_s = time.perf_counter() - started
    path = scratch / "exact.npz"
    started = time.perf_counter()
    np.savez(path, vectors=gallery.vectors, present=gallery.present, quality=gallery.quality)
    save_s = time.perf_counter() - started
    bytes_total = path.stat().st_size
    started = time.perf_counter()
    with np.load(path) as data:
        _ = data["vectors"], data["present"], data["quality"]
    load_s = time.perf_counter() - started
    return Results(labels, scores, latencies, batch_s, enroll_s, bytes_total, save_s, load_s)


def run_faiss(work: Workload, params: IndexParams, bars: Bars, scratch: Path) -> Results | str:
    """faiss-cpu HNSW (flat storage, inner product) on the same coarse vectors and rescoring."""
    try:
        import faiss  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return "faiss-cpu is not installed (pip install 'scfed[bench]')"
    n = len(work.gallery)
    dim = FINGERS * COARSE_PER_FINGER
    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    index.hnsw.efSearch = params.ef
    chunk = 50_000
    started = time.perf_counter()
    # Centred as our engine centres them (once the gallery reaches CENTRE_SAMPLE).
    centre = (
        coarse_centre(work.gallery.vectors[:CENTRE_SAMPLE], work.gallery.present[:CENTRE_SAMPLE])
        if n >= CENTRE_SAMPLE
        else None
    )
    with bars.task("faiss: enrol (HNSWFlat, 2 threads)", n) as advance:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            index.add(coarse_vectors(work.gallery.vectors[start:stop], centre))
            advance(stop - start)
    enroll_s = time.perf_counter() - started
    gallery = work.gallery
    rescore = min(params.rescore, n)

    def search(b: TenprintBatch) -> tuple[Labels, Scores]:
        _, proposals = index.search(coarse_vectors(b.vectors, centre), rescore)
        return rank_proposals(gallery.vectors, gallery.present, b, proposals.astype(np.int64), 1)

    probes = work.probes
    faiss.omp_set_num_threads(1)
    labels, scores, latencies = _timed_searches(
        search, probes, bars, "faiss: searches on one thread"
    )
    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    search(probes)
    batch_s = time.perf_counter() - started
    path = scratch / "faiss.index"
    started = time.perf_counter()
    faiss.write_index(index, str(path))
    save_s = time.perf_counter() - started
    started = time.perf_counter()
    faiss.read_index(str(path))
    load_s = time.perf_counter() - started
    # The templates are held beside the graph for rescoring, as in our engine.
    bytes_total = path.stat().st_size + gallery.vectors.nbytes + 2 * gallery.present.nbytes
    return Results(labels, scores, latencies, batch_s, enroll_s, bytes_total, save_s, load_s)
