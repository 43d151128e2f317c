"""The benchmark's workload: a synthetic gallery, mated and non-mated probes, and the truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ...world.tenprints import SyntheticFingerprints
from ..params import FINGERS
from ..template import TenprintBatch
from .progress import Bars

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


def make_workload(gallery: int, probes: int, seed: int, bars: Bars) -> Workload:
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
