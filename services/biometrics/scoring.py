"""The fused tenprint score, and the coarse vector HNSW searches on.

The coarse vector is centred: each finger's 8 values less that finger's mean over the gallery
(the first `centre_sample` identities enrolled), then the 80 values scaled to unit length. The
shared pattern-class offset otherwise squeezes every coarse vector into one narrow cone, which
HNSW links poorly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .params import COARSE_PER_FINGER, FINGERS
from .template import BoolArray, FloatArray, TenprintBatch, TenprintTemplate

# Probes rescored together (bounds the memory of the gathered candidate templates).
RESCORE_CHUNK = 64


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


@dataclass(frozen=True)
class Candidate:
    """One entry of a ranked candidate list."""

    key: str
    score: float
