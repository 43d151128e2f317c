"""The control routes every service's HTTP edge carries, for tests and scenario runners: step
its manual clock, re-pace its accelerated clock, reset it to its configuration, save and load a
snapshot of its state. The rules live in control.py and snapshot.py, which the gRPC
AdminService (admin_servicer.py) calls too; these routes only translate (a DomainError becomes
its HTTP status through the app's handler)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response, params
from pydantic import BaseModel, ConfigDict, Field

from .audit import http_caller
from .control import ClockView, ResetReport, advance_clock, reset_service, set_clock
from .http_edge import error_responses
from .snapshot import SnapshotReport, load_snapshot, save_snapshot

if TYPE_CHECKING:
    from .server import Runtime, ServiceProvider


class ClockStep(BaseModel):
    """How far to step a manual clock: `seconds`, or an ISO 8601 / short `duration`."""

    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(default=None, description="Seconds of agency time.")
    duration: str | None = Field(
        default=None, description='ISO 8601 ("P2D", "PT48H") or short ("48h", "30d").'
    )


class ClockChange(BaseModel):
    """The clock a service should run on, as a spec (only "accelerated:<factor>" is accepted
    at runtime, on a service that already runs an accelerated clock)."""

    model_config = ConfigDict(extra="forbid")

    spec: str


# A snapshot is checked before anything changes, but read whole: the edge bounds what this PUT
# may send by its own setting (http_max_snapshot_bytes), larger than every other route's.
SNAPSHOT_PATH = "/v1/admin/snapshot"


def admin_router(
    provider: ServiceProvider, runtime: Runtime, dependencies: Sequence[params.Depends] = ()
) -> APIRouter:
    """The control routes: clock steps, clock pace, reset, snapshot save and load, each
    running `dependencies` first (the operator's check)."""
    router = APIRouter(tags=["control"], dependencies=dependencies, responses=error_responses(401))

    @router.post("/v1/clock/advance", responses=error_responses(409, 413, 422))
    async def clock_advance(step: ClockStep) -> ClockView:
        """Steps a manual clock forward: 422 for a bad, negative or over-long step (at most
        3650 days), 409 when the service runs another clock."""
        return advance_clock(provider, runtime, seconds=step.seconds, duration=step.duration)

    @router.post("/v1/clock", responses=error_responses(409, 413, 422))
    async def clock_set(change: ClockChange) -> ClockView:
        """Re-paces an accelerated clock from the current agency time: 422 for a bad spec, 409
        for any other change (the service's parts hold its clock; restart to change kind)."""
        return await set_clock(provider, runtime, change.spec)

    @router.post("/v1/admin/reset")
    async def admin_reset(request: Request) -> ResetReport:
        """Empties the service back to its configuration (the audit trail stays, and records
        the reset); says what it removed."""
        return await reset_service(provider, runtime, who=http_caller(request))

    @router.get(
        SNAPSHOT_PATH,
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}},
    )
    async def snapshot_save() -> Response:
        """The service's whole state as a snapshot document (JSON; snapshot.py says what it
        holds)."""
        snapshot = await save_snapshot(provider, runtime)
        return Response(content=snapshot.document, media_type="application/json")

    @router.put(
        SNAPSHOT_PATH,
        responses=error_responses(413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
                "description": "A snapshot document, as GET /v1/admin/snapshot answers",
            }
        },
    )
    async def snapshot_load(request: Request) -> SnapshotReport:
        """Replaces the service's state with a snapshot document's: 422 naming the problem
        (not JSON, another format version or service, an unknown table or column, rows the
        tables refuse), with nothing changed."""
        return await load_snapshot(provider, runtime, await request.body())

    return router
