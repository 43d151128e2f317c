"""The LESC provider: gRPC edge over the status determination center."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2 as pb
from scfed.lesc.v1 import lesc_pb2_grpc as pb_grpc
from services.lesc.config import LescSettings
from services.lesc.determination import default_status_rules
from services.lesc.domain import StatusDeterminationCenter
from services.lesc.models import LescBase
from services.lesc.offense_levels import load_table
from services.runtime import routes
from services.runtime.server import Runtime, grpc_edge


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
            peer=routes.CJIS_IAFIS,
            handler=lambda s: self._center.take_iaq(s, request),
        )


class LescProvider:
    """Runs the LESC service in the shared host."""

    name = routes.LESC
    metadatas: Sequence[MetaData] = (LescBase.metadata,)

    def __init__(self, settings: LescSettings) -> None:
        self.settings = settings

    async def on_after_init(self, runtime: Runtime) -> None:
        """Nothing to load: the rules are data files read on first use."""

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the Lesc servicer."""
        center = StatusDeterminationCenter(
            clock=runtime.clock,
            outbox=runtime.outbox,
            table=load_table(self.settings.offense_table),
            rules=default_status_rules(),
        )
        pb_grpc.add_LescServicer_to_server(LescServicer(runtime, center), server)
        return [pb.DESCRIPTOR.services_by_name["Lesc"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """LESC has no HTTP routes of its own."""
        return None

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Nothing to release."""
