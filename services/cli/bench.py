"""`scfed bench biometrics`: accuracy, speed and size of the tenprint engine beside its peers.

Enrols N synthetic identities, runs P mated searches (fresh captures of enrolled people) and P
non-mated searches (strangers), and reports for our engine (hnswlib HNSW over the coarse vector,
exact rescoring), for exact numpy brute force, and for faiss-cpu's HNSW with the same coarse
vector and rescoring (when faiss is installed: the optional `bench` extra).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from services.runtime.biometrics import (
    CENTRE_SAMPLE,
    COARSE_PER_FINGER,
    COARSE_VERSION,
    DEFAULT_FPIR,
    DEFAULT_THRESHOLD,
    FINGERS,
    BiometricEngine,
    Calibration,
    IndexParams,
    TenprintBatch,
    coarse_centre,
    coarse_vectors,
    file_sha256,
    fused_scores,
    rank_proposals,
)
from services.world.tenprints import SyntheticFingerprints

FPIR_POINTS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
# Gallery rows per exact matrix product (bounds the memory of brute force at 1M).
EXACT_CHUNK = 65_536
# Probes per brute-force block (with EXACT_CHUNK, bounds each score matrix).
EXACT_PROBE_BLOCK = 2_000
GENERATE_CHUNK = 50_000
Labels = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]


@dataclass
class Workload:
    """The gallery, the probes and the truth."""

    gallery: TenprintBatch
    mated: TenprintBatch
    mates: Labels
    non_mated: TenprintBatch

    @property
    def probes(self) -> TenprintBatch:
        """Mated then non-mated probes, one batch."""
        return TenprintBatch(
            vectors=np.concatenate([self.mated.vectors, self.non_mated.vectors]),
            present=np.concatenate([self.mated.present, self.non_mated.present]),
            quality=np.concatenate([self.mated.quality, self.non_mated.quality]),
        )


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


class _Bars:
    """Progress bars on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.completed:>9,}/{task.total:<9,}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar; the yielded function advances it."""
        task_id = self.progress.add_task(description, total=total)
        try:
            yield lambda n: self.progress.advance(task_id, n)
        finally:
            self.progress.update(task_id, completed=total)


def make_workload(gallery: int, probes: int, seed: int, bars: _Bars) -> Workload:
    """Synthetic people, their enrolment captures, and fresh captures to search."""
    model = SyntheticFingerprints()
    rng = np.random.default_rng(seed)
    dim = model.dim
    vectors = np.zeros((gallery, FINGERS, dim), dtype=np.float32)
    present = np.zeros((gallery, FINGERS), dtype=bool)
    quality = np.zeros((gallery, FINGERS), dtype=np.uint8)
    mates = np.sort(rng.choice(gallery, size=min(probes, gallery), replace=False))
    mate_fingers = np.zeros((mates.size, FINGERS, dim))
    mate_missing = np.zeros((mates.size, FINGERS), dtype=bool)
    with bars.task("synthetic people and captures", gallery) as advance:
        for start in range(0, gallery, GENERATE_CHUNK):
            n = min(GENERATE_CHUNK, gallery - start)
            people = model.new_people(n, rng)
            missing = model.amputations(n, rng)
            batch = model.capture_many(people, rng, missing=missing)
            vectors[start : start + n] = batch.vectors
            present[start : start + n] = batch.present
            quality[start : start + n] = batch.quality
            inside = (mates >= start) & (mates < start + n)
            mate_fingers[inside] = people[mates[inside] - start]
            mate_missing[inside] = missing[mates[inside] - start]
            advance(n)
    mated = model.capture_many(mate_fingers, rng, missing=mate_missing)
    strangers = model.new_people(probes, rng)
    non_mated = model.capture_many(strangers, rng, missing=model.amputations(probes, rng))
    return Workload(
        gallery=TenprintBatch(vectors=vectors, present=present, quality=quality),
        mated=mated,
        mates=mates.astype(np.int64),
        non_mated=non_mated,
    )


def _timed_searches(
    search: Callable[[TenprintBatch], tuple[Labels, Scores]],
    probes: TenprintBatch,
    bars: _Bars,
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


def _enrol(engine: BiometricEngine, gallery: TenprintBatch, bars: _Bars, description: str) -> float:
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


def run_ours(work: Workload, params: IndexParams, bars: _Bars, scratch: Path) -> Results:
    """Our engine: enrol, search one by one, search in a batch, save and load."""
    n = len(work.gallery)
    engine = BiometricEngine(params=params, initial_capacity=n)
    enroll_s = _enrol(engine, work.gallery, bars, "ours: enrol (hnswlib, 2 threads)")
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


def _exact_top1(
    gallery: TenprintBatch, probes: TenprintBatch, bars: _Bars
) -> tuple[Labels, Scores]:
    """Brute force: every probe against every gallery tenprint, chunked matrix products.

    Gallery rows in chunks of EXACT_CHUNK and probes in blocks of EXACT_PROBE_BLOCK bound the
    score matrices (about 0.5 GB each) whatever the number of probes.
    """
    n = len(gallery)
    flat = gallery.vectors.reshape(n, -1)
    best = np.full(len(probes), -np.inf, dtype=np.float32)
    best_label = np.full(len(probes), -1, dtype=np.int64)
    blocks = range(0, len(probes), EXACT_PROBE_BLOCK)
    with bars.task("exact: brute force (numpy)", n * len(blocks)) as advance:
        for first in blocks:
            last = min(len(probes), first + EXACT_PROBE_BLOCK)
            probe_flat = probes.vectors[first:last].reshape(last - first, -1).T.copy()
            probe_present = probes.present[first:last].astype(np.float32).T.copy()
            columns = np.arange(last - first)
            for start in range(0, n, EXACT_CHUNK):
                stop = min(n, start + EXACT_CHUNK)
                cosines = flat[start:stop] @ probe_flat
                common = gallery.present[start:stop].astype(np.float32) @ probe_present
                scores = cosines / np.sqrt(np.maximum(common, 1.0) * FINGERS)
                scores[common == 0] = 0.0
                arg = scores.argmax(axis=0)
                top = scores[arg, columns]
                better = top > best[first:last]
                best[first:last][better] = top[better]
                best_label[first:last][better] = arg[better] + start
                advance(stop - start)
    return best_label, best


def run_exact(work: Workload, bars: _Bars, scratch: Path) -> Results:
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
    labels, scores = _exact_top1(gallery, probes, bars)
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


def run_faiss(work: Workload, params: IndexParams, bars: _Bars, scratch: Path) -> Results | str:
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


def _percentiles(values: npt.NDArray[Any], points: tuple[float, ...]) -> dict[str, float]:
    return {f"p{p:g}": round(float(np.percentile(values, p)), 4) for p in points}


def summarise(work: Workload, results: Results, exact: Results | None) -> dict[str, Any]:
    """The figures of one searcher."""
    p = len(work.mated)
    n = len(work.gallery)
    hit = results.labels[:p] == work.mates
    mate_scores = np.where(hit, results.scores[:p], -np.inf)
    calibration = Calibration.from_impostor_scores(results.scores[p:])
    tradeoff = []
    for fpir in FPIR_POINTS:
        threshold = calibration.threshold_for(fpir)
        tradeoff.append(
            {
                "fpir": fpir,
                "threshold": round(threshold, 4),
                "fnir": float(np.mean(mate_scores < threshold)),
            }
        )
    default = {
        "threshold": DEFAULT_THRESHOLD,
        "fpir": calibration.fpir_at(DEFAULT_THRESHOLD),
        "fnir": float(np.mean(mate_scores < DEFAULT_THRESHOLD)),
    }
    if exact is not None:
        exact_hit = exact.labels[:p] == work.mates
        recall = float(np.mean(hit[exact_hit])) if exact_hit.any() else 1.0
    else:
        recall = 1.0
    latencies = np.asarray(results.latencies_ms)
    probes_total = 2 * p
    return {
        "rank1": float(np.mean(hit)),
        "fnir_at_fpir_0_001": tradeoff[0]["fnir"],
        "fnir_at_fpir_0_01": next(t["fnir"] for t in tradeoff if t["fpir"] == 0.01),
        "mate_recall_vs_exact": recall,
        "search_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 3),
            "p99": round(float(np.percentile(latencies, 99)), 3),
            "measured": int(latencies.size),
        },
        "qps": round(probes_total / results.batch_s, 1),
        "enroll_per_s": round(n / results.enroll_s, 1) if results.enroll_s > 0 else None,
        "bytes_per_identity": round(results.bytes_total / n, 1),
        "save_s": None if results.save_s is None else round(results.save_s, 3),
        "load_s": None if results.load_s is None else round(results.load_s, 3),
        "tradeoff": tradeoff,
        "at_default_threshold": default,
    }


def score_distributions(work: Workload) -> dict[str, dict[str, float]]:
    """Genuine (probe vs its mate) and impostor (probe vs someone else) fused scores."""
    p = len(work.mated)
    gallery = work.gallery
    rng = np.random.default_rng(0)
    genuine = np.empty(p, dtype=np.float32)
    impostor = np.empty(p * 10, dtype=np.float32)
    for i in range(p):
        mate = int(work.mates[i])
        genuine[i] = fused_scores(
            work.mated.vectors[i],
            work.mated.present[i],
            gallery.vectors[mate : mate + 1],
            gallery.present[mate : mate + 1],
        )[0]
        others = rng.integers(0, len(gallery), 10)
        others = others[others != mate]
        impostor[i * 10 : i * 10 + others.size] = fused_scores(
            work.mated.vectors[i],
            work.mated.present[i],
            gallery.vectors[others],
            gallery.present[others],
        )
        impostor[i * 10 + others.size : (i + 1) * 10] = np.nan
    impostor = impostor[~np.isnan(impostor)]
    points = (0.1, 1, 5, 25, 50, 75, 95, 99, 99.9)
    return {
        "genuine": {"mean": round(float(genuine.mean()), 4), **_percentiles(genuine, points)},
        "impostor_pairs": {
            "mean": round(float(impostor.mean()), 4),
            "sd": round(float(impostor.std()), 4),
            **_percentiles(impostor, points),
        },
    }


def run_biometrics_bench(
    *,
    gallery: int,
    probes: int,
    seed: int,
    progress: bool = True,
    params: IndexParams | None = None,
    with_faiss: bool = True,
) -> dict[str, Any]:
    """Runs the whole benchmark; returns the report as a JSON-ready dict."""
    if gallery < 1 or probes < 1:
        raise ValueError("gallery and probes must be at least 1")
    params = params or IndexParams()
    bars = _Bars(progress)
    with bars.progress, tempfile.TemporaryDirectory(prefix="scfed-bench-") as tmp:
        scratch = Path(tmp)
        work = make_workload(gallery, probes, seed, bars)
        ours = run_ours(work, params, bars, scratch)
        exact = run_exact(work, bars, scratch)
        faiss_results = run_faiss(work, params, bars, scratch) if with_faiss else "not asked for"
    p = len(work.mated)
    report: dict[str, Any] = {
        "gallery": gallery,
        "probes": probes,
        "mated_probes": p,
        "non_mated_probes": probes,
        "seed": seed,
        "engine": {
            "index": "hnswlib",
            "m": params.m,
            "ef_construction": params.ef_construction,
            "ef": params.ef,
            "rescore": params.rescore,
            "coarse_dim": FINGERS * COARSE_PER_FINGER,
            "coarse": COARSE_VERSION,
            "default_threshold": DEFAULT_THRESHOLD,
            "default_fpir": DEFAULT_FPIR,
        },
        **summarise(work, ours, exact),
        "scores": score_distributions(work),
        "peers": {
            "exact": summarise(work, exact, exact),
            "faiss_hnsw": (
                summarise(work, faiss_results, exact)
                if isinstance(faiss_results, Results)
                else {"skipped": faiss_results}
            ),
        },
    }
    exact_qps = report["peers"]["exact"]["qps"]
    report["speedup_vs_exact_qps"] = round(report["qps"] / exact_qps, 1) if exact_qps else None
    faiss_peer = report["peers"]["faiss_hnsw"]
    if "qps" in faiss_peer:
        report["qps_ratio_vs_faiss"] = round(report["qps"] / faiss_peer["qps"], 2)
    return report


def _row(name: str, figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"{name:<12} skipped: {figures['skipped']}"
    return (
        f"{name:<12} {figures['rank1']:>7.4f} {figures['fnir_at_fpir_0_001']:>9.4f} "
        f"{figures['fnir_at_fpir_0_01']:>9.4f} {figures['mate_recall_vs_exact']:>7.4f} "
        f"{figures['search_ms']['p50']:>8.3f} {figures['search_ms']['p99']:>8.3f} "
        f"{figures['qps']:>9.1f} {_num(figures['enroll_per_s']):>10} "
        f"{figures['bytes_per_identity']:>8.0f} {_num(figures['save_s']):>7} "
        f"{_num(figures['load_s']):>7}"
    )


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:.3f}"


def render_text(report: dict[str, Any]) -> str:
    """The human form of a report."""
    e = report["engine"]
    lines = [
        f"scfed bench biometrics: gallery {report['gallery']:,}, "
        f"{report['mated_probes']:,} mated + {report['non_mated_probes']:,} non-mated probes, "
        f"seed {report['seed']}",
        f"engine: hnswlib M={e['m']} ef_construction={e['ef_construction']} ef={e['ef']} "
        f"rescore={e['rescore']} coarse={e['coarse_dim']} dims ({e.get('coarse', '-')}); "
        f"default threshold "
        f"{e['default_threshold']} (FPIR {e['default_fpir']})",
        "",
        f"{'searcher':<12} {'rank1':>7} {'FNIR@.1%':>9} {'FNIR@1%':>9} {'recall':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'batch qps':>9} {'enrol/s':>10} {'B/id':>8} "
        f"{'save s':>7} {'load s':>7}",
        _row("ours", report),
        _row("exact", report["peers"]["exact"]),
        _row("faiss_hnsw", report["peers"]["faiss_hnsw"]),
        "",
        f"ours vs exact batch qps: {report['speedup_vs_exact_qps']}x"
        + (
            f"; ours vs faiss batch qps: {report['qps_ratio_vs_faiss']}x"
            if "qps_ratio_vs_faiss" in report
            else ""
        ),
        "",
        "trade-off (ours; threshold from the non-mated searches' best scores):",
        f"  {'FPIR':>6} {'threshold':>10} {'FNIR':>8}",
    ]
    lines += [
        f"  {t['fpir']:>6g} {t['threshold']:>10.4f} {t['fnir']:>8.4f}" for t in report["tradeoff"]
    ]
    d = report["at_default_threshold"]
    lines.append(
        f"  at the default threshold {d['threshold']}: FPIR {d['fpir']:.4f}, FNIR {d['fnir']:.4f}"
    )
    lines.append("")
    lines.append("score distributions (fused score):")
    for name, dist in report["scores"].items():
        lines.append(f"  {name:<15} " + " ".join(f"{k}={v}" for k, v in dist.items()))
    lines.append("")
    lines.append(
        "search_ms: one probe at a time on one thread, fusion included; batch qps: all probes "
        "in one call on 2 threads; B/id: saved bytes per identity (graph + templates + keys)."
    )
    return "\n".join(lines)


def run_index_sweep(
    *,
    gallery: int,
    probes: int,
    seed: int,
    ms: Sequence[int],
    efs: Sequence[int],
    ef_construction: int,
    rescore: int,
    progress: bool = True,
) -> dict[str, Any]:
    """HNSW parameters by measurement: one graph per M, searched at every ef.

    The same `probes` mated searches at every point; a miss is a mated search whose mate is
    exact search's best but not ours. Timings include the exact rescoring: the mean of the
    searches in one call on one thread, and the throughput of one call on two threads.
    """
    if gallery < 1 or probes < 1 or not ms or not efs:
        raise ValueError("gallery, probes, ms and efs must not be empty")
    bars = _Bars(progress)
    rows: list[dict[str, Any]] = []
    with bars.progress:
        work = make_workload(gallery, probes, seed, bars)
        mated = work.mated
        truth, _ = _exact_top1(work.gallery, mated, bars)
        eligible = truth == work.mates
        for m in ms:
            params = IndexParams(m=m, ef_construction=ef_construction).searching(
                ef=efs[0], rescore=rescore
            )
            engine = BiometricEngine(params=params, initial_capacity=gallery)
            enroll_s = _enrol(engine, work.gallery, bars, f"M={m}: enrol (2 threads)")
            with bars.task(f"M={m}: search at each ef", len(efs)) as advance:
                for ef in efs:
                    engine.tune(ef=ef)
                    started = time.perf_counter()
                    labels, _ = engine.search_labels(mated, k=1, num_threads=1)
                    one_s = time.perf_counter() - started
                    started = time.perf_counter()
                    engine.search_labels(mated, k=1, num_threads=2)
                    two_s = time.perf_counter() - started
                    missed = int(np.sum(eligible & (labels[:, 0] != work.mates)))
                    rows.append(
                        {
                            "m": m,
                            "ef": engine.params.ef,
                            "enroll_per_s": round(gallery / enroll_s, 1),
                            "missed": missed,
                            "recall": round(1 - missed / max(1, int(eligible.sum())), 5),
                            "mean_ms": round(one_s / len(mated) * 1000, 4),
                            "qps": round(len(mated) / two_s, 1),
                        }
                    )
                    advance(1)
            engine.clear()
    return {
        "gallery": gallery,
        "mated_probes": len(mated),
        "exact_finds_mate": int(eligible.sum()),
        "seed": seed,
        "ef_construction": ef_construction,
        "rescore": rescore,
        "coarse": COARSE_VERSION,
        "rows": rows,
    }


def render_sweep(report: dict[str, Any]) -> str:
    """The human form of a sweep."""
    lines = [
        f"scfed bench sweep: gallery {report['gallery']:,}, {report['mated_probes']:,} mated "
        f"probes (exact search finds the mate of {report['exact_finds_mate']:,}), seed "
        f"{report['seed']}; ef_construction={report['ef_construction']} "
        f"rescore={report['rescore']} ({report['coarse']})",
        "",
        f"{'M':>4} {'ef':>5} {'enrol/s':>9} {'missed':>7} {'recall':>8} {'ms/search':>10} "
        f"{'qps (2 thr)':>12}",
    ]
    lines += [
        f"{r['m']:>4} {r['ef']:>5} {r['enroll_per_s']:>9,.0f} {r['missed']:>7} "
        f"{r['recall']:>8.5f} {r['mean_ms']:>10.3f} {r['qps']:>12,.1f}"
        for r in report["rows"]
    ]
    lines.append("")
    lines.append(
        "missed: mated searches whose mate exact search ranks first and ours does not; "
        "ms/search: mean of one call on one thread, fusion included."
    )
    return "\n".join(lines)
