"""LESC's HTTP edge: the desk's case view, and a case's IAQ and IAR as Nlets text (FastAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from ..formats import nlets
from ..runtime import audit
from ..runtime.http_edge import error_responses
from ..runtime.server import Runtime
from .domain import StatusDeterminationCenter

Tcn = Annotated[str, Path(min_length=1, max_length=40, description="The booking's TCN")]


def _nlets_text(what: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers of a route that answers Nlets text."""
    return {
        200: {
            "description": f"The {what} as Nlets text (README, Nlets text)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(404, 422),
    }


def build_router(runtime: Runtime, center: StatusDeterminationCenter) -> APIRouter:
    """The desk's case view, and each case's IAQ and IAR as Nlets text."""
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

    # response_class=Response: the errors stay documented as JSON, the 200 as text/plain.
    @router.get("/cases/{tcn}/iaq", response_class=Response, responses=_nlets_text("IAQ"))
    async def case_iaq(request: Request, tcn: Tcn) -> PlainTextResponse:
        """The IAQ of a booking's case as an Nlets terminal shows it (`nlets.parse_iaq` reads
        it back): 404 when LESC has no case for the TCN. The read is audited."""
        async with audit.audited_read(
            runtime.db, who=audit.http_caller(request), rpc="GET /v1/cases/{tcn}/iaq", tcn=tcn
        ) as session:
            iaq = await center.iaq_of(session, tcn)
        return PlainTextResponse(nlets.render_iaq(iaq))

    @router.get("/cases/{tcn}/iar", response_class=Response, responses=_nlets_text("IAR"))
    async def case_iar(request: Request, tcn: Tcn) -> PlainTextResponse:
        """The IAR LESC answered a booking's case with, as an Nlets terminal shows it: LESC's
        narrative, then the fields (`nlets.parse_iar` reads them back). 404 when LESC has no
        case for the TCN or has not answered it yet. The read is audited."""
        async with audit.audited_read(
            runtime.db, who=audit.http_caller(request), rpc="GET /v1/cases/{tcn}/iar", tcn=tcn
        ) as session:
            message = await center.iar_of(session, tcn)
        return PlainTextResponse(nlets.render_iar(message))

    return router
