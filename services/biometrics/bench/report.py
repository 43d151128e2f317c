"""`scfed bench biometrics`: runs every searcher on one workload and reports its figures."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..calibration import Calibration
from ..params import (
    COARSE_PER_FINGER,
    COARSE_VERSION,
    DEFAULT_FPIR,
    DEFAULT_THRESHOLD,
    FINGERS,
    IndexParams,
)
from ..scoring import fused_scores
from .progress import Bars
from .searchers import Results, run_exact, run_faiss, run_ours
from .workload import Workload, make_workload

FPIR_POINTS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


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
    bars = Bars(progress)
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
