"""LESC's HTTP edge: the desk's case view (FastAPI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..runtime import audit
from ..runtime.http_edge import error_responses
from ..runtime.server import Runtime
from .domain import StatusDeterminationCenter


def build_router(runtime: Runtime, center: StatusDeterminationCenter) -> APIRouter:
    """The desk's case view."""
    router = APIRouter(prefix="/v1", tags=["lesc"])

    @router.get("/cases", responses=error_responses(422))
    async def cases(
        request: Request,
        tcn: Annotated[str, Query(min_length=1, max_length=40)],
    ) -> list[dict[str, object]]:
        """The LESC cases of one booking: route, state, due and answer times, lateness; the
        read is audited."""
        async with audit.audited_read(
            runtime.db, who=audit.http_caller(request), rpc="GET /v1/cases", tcn=tcn
        ) as session:
            return await center.cases_for(session, tcn)

    return router
