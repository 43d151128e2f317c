"""The LESC provider: gRPC edge over the status determination center."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

import grpc
from fastapi import APIRouter, Query
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2 as pb
from scfed.lesc.v1 import lesc_pb2_grpc as pb_grpc
from services.federation import Agency
from services.lesc import measures
from services.lesc.config import LescSettings
from services.lesc.desk import DeskPolicy, parse_shifts
from services.lesc.determination import default_status_rules
from services.lesc.domain import StatusDeterminationCenter
from services.lesc.models import LescBase
from services.lesc.offense_levels import load_table
from services.runtime.server import Runtime, grpc_edge

log = logging.getLogger(__name__)


class LescServicer(pb_grpc.LescServicer):
    """Translates LESC RPCs to the determination center."""

    def __init__(self, runtime: Runtime, center: StatusDeterminationCenter) -> None:
        self._rt = runtime
        self._center = center

    @grpc_edge
    async def SubmitIaq(self, request: pb.Iaq, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """IAQ from CJIS."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.CJIS_IAFIS,
            handler=lambda s: self._center.take_iaq(s, request),
        )


class LescProvider:
    """Runs the LESC service in the shared host."""

    name = Agency.LESC
    measure_counts = staticmethod(measures.counts)
    metadatas: Sequence[MetaData] = (LescBase.metadata,)

    def __init__(self, settings: LescSettings) -> None:
        self.settings = settings
        self.center: StatusDeterminationCenter | None = None
        self._desk: asyncio.Task[None] | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Sets up the desk and starts the analysts' work loop in agency time."""
        s = self.settings
        self.center = StatusDeterminationCenter(
            clock=runtime.clock,
            outbox=runtime.outbox,
            table=load_table(s.offense_table),
            rules=default_status_rules(),
            policy=DeskPolicy(
                auto_min_score=s.auto_min_score,
                vtc_below_score=s.vtc_below_score,
                analyst_time=timedelta(minutes=s.analyst_minutes),
                vtc_time=timedelta(minutes=s.vtc_minutes),
                target=timedelta(minutes=s.iar_target_minutes),
            ),
            shifts=parse_shifts(s.shifts),
        )
        self._desk = asyncio.create_task(self._work(runtime), name="lesc-desk")

    async def _work(self, runtime: Runtime) -> None:
        assert self.center is not None
        while True:
            try:
                async with runtime.db.session() as session:
                    changed = await self.center.work(session)
                if changed:
                    runtime.outbox.notify()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lesc: desk round failed; trying again")
                changed = 0
            if not changed:
                await asyncio.sleep(self.settings.desk_poll_s)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the Lesc servicer."""
        assert self.center is not None, "on_after_init runs first"
        pb_grpc.add_LescServicer_to_server(LescServicer(runtime, self.center), server)
        return [pb.DESCRIPTOR.services_by_name["Lesc"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The desk's case view."""
        center = self.center
        assert center is not None, "on_after_init runs first"
        router = APIRouter(prefix="/v1", tags=["lesc"])

        @router.get("/cases")
        async def cases(
            tcn: Annotated[str, Query(min_length=1, max_length=40)],
        ) -> list[dict[str, object]]:
            """The LESC cases of one booking: route, state, due and answer times, lateness."""
            async with runtime.db.session() as session:
                return await center.cases_for(session, tcn)

        return router

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Stops the desk; queued and in-work cases are picked up at the next start."""
        if self._desk is not None:
            self._desk.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._desk
            self._desk = None
