"""IDENT's HTTP edge: the gallery's statistics (FastAPI)."""

from __future__ import annotations

from fastapi import APIRouter

from ..runtime.server import Runtime
from .domain import IdentGallery


def build_router(runtime: Runtime, gallery: IdentGallery) -> APIRouter:
    """IDENT's statistics route."""
    router = APIRouter(prefix="/v1", tags=["ident"])

    @router.get("/stats")
    async def stats() -> dict[str, int]:
        """Gallery size, searches answered and matches among them."""
        async with runtime.db.session() as session:
            return {"gallery_size": len(gallery.engine), **await gallery.search_counts(session)}

    return router
