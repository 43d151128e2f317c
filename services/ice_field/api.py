"""The ICE field office's HTTP edge: the case view (FastAPI)."""

from __future__ import annotations

from fastapi import APIRouter

from ..runtime.server import Runtime
from .domain import case_summary


def build_router(runtime: Runtime) -> APIRouter:
    """The case view: how many removal cases stand in each state."""
    router = APIRouter(prefix="/v1", tags=["ice_field"])

    @router.get("/cases-summary")
    async def cases_summary() -> dict[str, object]:
        """Cases by state, and how many are still open (not removed, lapsed or relieved)."""
        async with runtime.db.session() as session:
            return await case_summary(session)

    return router
