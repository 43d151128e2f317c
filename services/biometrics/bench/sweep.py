"""`scfed bench sweep`: HNSW parameters by measurement, mates missed and time per M and ef."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import BiometricEngine
from ..params import COARSE_VERSION, IndexParams
from .exact import exact_top1
from .progress import Bars
from .searchers import enrol
from .workload import make_workload


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
    bars = Bars(progress)
    rows: list[dict[str, Any]] = []
    with bars.progress:
        work = make_workload(gallery, probes, seed, bars)
        mated = work.mated
        truth, _ = exact_top1(work.gallery, mated, bars)
        eligible = truth == work.mates
        for m in ms:
            params = IndexParams(m=m, ef_construction=ef_construction).searching(
                ef=efs[0], rescore=rescore
            )
            engine = BiometricEngine(params=params, initial_capacity=gallery)
            enroll_s = enrol(engine, work.gallery, bars, f"M={m}: enrol (2 threads)")
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
