"""Exact ground truth: the fused score of every probe against the whole gallery."""

from __future__ import annotations

import numpy as np

from ..params import FINGERS
from ..template import TenprintBatch
from .progress import Bars
from .workload import Labels, Scores

# Gallery rows per exact matrix product (bounds the memory of brute force at 1M).
EXACT_CHUNK = 65_536
# Probes per brute-force block (with EXACT_CHUNK, bounds each score matrix).
EXACT_PROBE_BLOCK = 2_000


def exact_top1(gallery: TenprintBatch, probes: TenprintBatch, bars: Bars) -> tuple[Labels, Scores]:
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
