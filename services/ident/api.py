"""IDENT's HTTP edge: the gallery's statistics (FastAPI)."""

from __future__ import annotations

from fastapi import APIRouter

from ..runtime.server import Runtime
from .domain import IdentGallery


def build_router(runtime: Runtime, gallery: IdentGallery) -> APIRouter:
    """IDENT's statistics route."""
    router = APIRouter(prefix="/v1", tags=["ident"])

    @router.get("/stats")
    async def stats() -> dict[str, int | float]:
        """Gallery size, searches answered and matches among them, and the default decision:
        its target FPIR, the threshold in use and the gallery size it was computed for."""
        engine = gallery.engine
        async with runtime.db.session() as session:
            return {
                "gallery_size": len(engine),
                **await gallery.search_counts(session),
                "target_fpir": engine.target_fpir,
                "match_threshold": engine.threshold,
                "threshold_gallery_size": engine.threshold_gallery_size,
            }

    return router
