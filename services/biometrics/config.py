"""Settings of the services that search prints: the match threshold, and the index of a gallery.

Built on the runtime's settings base, with the engine's parameters only: importing these does
not load numpy or hnswlib.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ..runtime.config import ServiceSettings
from .params import DEFAULT_FPIR, DEFAULT_THRESHOLD, IndexParams


class MatchSettings(ServiceSettings):
    """Settings of a service that decides tenprint matches (the SIB, CJIS/IAFIS, IDENT).

    A gallery service (below) decides with a threshold that follows its gallery's size unless
    `match_threshold` is set explicitly; the SIB decides with `match_threshold`.
    """

    match_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)


class GallerySettings(MatchSettings):
    """Settings of a service that holds a biometric gallery (IDENT, CJIS/IAFIS).

    `index_dir` is where the HNSW index is saved (``SCFED_IDENT_INDEX_DIR``,
    ``SCFED_CJIS_IAFIS_INDEX_DIR``); unset, the index is rebuilt from the database at every
    start. Give each service its own directory. `index_m` and `index_ef_construction` shape the
    graph (a saved index built otherwise is rebuilt); `index_ef` and `index_rescore` set the
    search breadth and the proposals rescored, traded between recall and search time (see the
    README's parameter table). `target_fpir` is the FPIR the default decision holds at any
    gallery size, unless a fixed `match_threshold` is set.
    """

    index_dir: Path | None = None
    index_save_every: int = Field(default=1000, ge=1)
    index_m: int = Field(default=IndexParams.m, ge=2, le=200)
    index_ef_construction: int = Field(default=IndexParams.ef_construction, ge=1)
    index_ef: int = Field(default=IndexParams.ef, ge=1)
    index_rescore: int = Field(default=IndexParams.rescore, ge=1, le=10_000)
    target_fpir: float = Field(default=DEFAULT_FPIR, gt=0, lt=1)

    def fixed_threshold(self) -> float | None:
        """The threshold set explicitly (``..._MATCH_THRESHOLD``), or None: decisions then
        hold `target_fpir` at the gallery's size (``..._TARGET_FPIR``)."""
        return self.match_threshold if "match_threshold" in self.model_fields_set else None

    def index_params(self) -> IndexParams:
        """The HNSW parameters these settings ask for (ef at least the proposals rescored)."""
        return IndexParams(m=self.index_m, ef_construction=self.index_ef_construction).searching(
            ef=self.index_ef, rescore=self.index_rescore
        )
