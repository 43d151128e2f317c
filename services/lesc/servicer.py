"""LESC's gRPC edge over the status determination center."""

from __future__ import annotations

import grpc

from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2 as pb
from scfed.lesc.v1 import lesc_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime.edge import grpc_edge
from ..runtime.server import Runtime
from .domain import StatusDeterminationCenter


class LescServicer(pb_grpc.LescServicer):
    """Translates LESC RPCs to the determination center."""

    def __init__(self, runtime: Runtime, center: StatusDeterminationCenter) -> None:
        self._rt = runtime
        self._center = center

    @grpc_edge
    async def SubmitIaq(self, request: pb.Iaq, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """IAQ from CJIS."""
        return await self._rt.inbox.take(
            request, peer=Agency.CJIS_IAFIS, handler=self._center.take_iaq
        )
