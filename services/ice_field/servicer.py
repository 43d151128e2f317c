"""The ICE field office's gRPC edge over field operations."""

from __future__ import annotations

import grpc

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.ice_field.v1 import ice_field_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime import audit
from ..runtime.edge import grpc_edge
from ..runtime.server import Runtime
from .domain import FieldOperations


class IceFieldServicer(pb_grpc.IceFieldServicer):
    """Translates field office RPCs to field operations."""

    def __init__(self, runtime: Runtime, operations: FieldOperations) -> None:
        self._rt = runtime
        self._ops = operations

    @grpc_edge
    async def DeliverIar(
        self, request: pb.IarCopy, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IAR copy from LESC."""
        return await self._rt.inbox.take(request, peer=Agency.LESC, handler=self._ops.take_iar)

    @grpc_edge
    async def NotifyRelease(
        self, request: pb.ReleaseNotice, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """Release notice from an LEA, through its SIB."""
        return await self._rt.inbox.take(request, peer=Agency.SIB, handler=self._ops.notify_release)

    @grpc_edge
    async def RegisterFieldOffice(
        self, request: pb.FieldOffice, context: grpc.aio.ServicerContext
    ) -> pb.FieldOffice:
        """Creates or replaces a field office."""
        async with self._rt.db.session() as session:
            return await self._ops.register_office(session, request)

    @grpc_edge
    async def AdvanceCase(
        self, request: pb.AdvanceCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetainerRecord:
        """An officer's step on a case."""
        async with self._rt.db.session() as session:
            return await self._ops.advance(
                session, request.detainer_id, request.to_state, request.reason
            )

    @grpc_edge
    async def GetDetainer(
        self, request: pb.GetDetainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetainerRecord:
        """One detainer, the read audited."""
        async with audit.audited_read(
            self._rt.db,
            who=audit.caller(context),
            rpc="GetDetainer",
            detail=f"detainer {request.detainer_id}",
        ) as session:
            return await self._ops.detainer(session, request.detainer_id)
