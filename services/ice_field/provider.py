"""The ICE field office provider: gRPC edge over field operations."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.ice_field.v1 import ice_field_pb2_grpc as pb_grpc
from services.ice_field.config import IceFieldSettings
from services.ice_field.decision import DiscretionPolicy
from services.ice_field.domain import FieldOperations
from services.ice_field.models import IceFieldBase
from services.runtime import routes
from services.runtime.server import Runtime, grpc_edge


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
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=routes.LESC,
            handler=lambda s: self._ops.take_iar(s, request),
        )

    @grpc_edge
    async def NotifyRelease(
        self, request: pb.ReleaseNotice, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """Release notice from an LEA, through its SIB."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=routes.SIB,
            handler=lambda s: self._ops.notify_release(s, request),
        )

    @grpc_edge
    async def RegisterFieldOffice(
        self, request: pb.FieldOffice, context: grpc.aio.ServicerContext
    ) -> pb.FieldOffice:
        """Creates or replaces a field office."""
        async with self._rt.db.session() as session:
            return await self._ops.register_office(session, request)

    @grpc_edge
    async def GetDetainer(
        self, request: pb.GetDetainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetainerRecord:
        """One detainer."""
        async with self._rt.db.session() as session:
            return await self._ops.detainer(session, request.detainer_id)


class IceFieldProvider:
    """Runs the ICE field office service in the shared host."""

    name = routes.ICE_FIELD
    metadatas: Sequence[MetaData] = (IceFieldBase.metadata,)

    def __init__(self, settings: IceFieldSettings) -> None:
        self.settings = settings

    async def on_after_init(self, runtime: Runtime) -> None:
        """Nothing to load."""

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the IceField servicer."""
        operations = FieldOperations(
            clock=runtime.clock,
            outbox=runtime.outbox,
            policy=DiscretionPolicy(
                level_2=self.settings.discretion_level_2,
                level_3=self.settings.discretion_level_3,
            ),
            max_hold_hours=self.settings.max_hold_hours,
        )
        pb_grpc.add_IceFieldServicer_to_server(IceFieldServicer(runtime, operations), server)
        return [pb.DESCRIPTOR.services_by_name["IceField"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The field offices have no HTTP routes of their own."""
        return None

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Nothing to release."""
