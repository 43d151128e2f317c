"""The SIB provider: gRPC edge for responses and configuration, HTTP edge for the LEAs."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.sib.v1 import sib_pb2 as pb
from scfed.sib.v1 import sib_pb2_grpc as pb_grpc
from services.federation import Agency
from services.runtime.envelope import MessageType
from services.runtime.server import Runtime, grpc_edge
from services.sib import measures
from services.sib.api import build_router
from services.sib.config import SibSettings
from services.sib.domain import StateBureau
from services.sib.models import SibBase


class SibServicer(pb_grpc.StateIdentificationBureauServicer):
    """Translates SIB RPCs to the bureau and back."""

    def __init__(self, runtime: Runtime, bureau: StateBureau) -> None:
        self._rt = runtime
        self._bureau = bureau

    @grpc_edge
    async def DeliverSre(
        self, request: pb.SreMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """SRE from CJIS."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.CJIS_IAFIS,
            handler=lambda s: self._bureau.take_sre(s, request),
        )

    @grpc_edge
    async def DeliverErrt(
        self, request: pb.ErrtMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """ERRT from CJIS."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.CJIS_IAFIS,
            handler=lambda s: self._bureau.take_errt(s, request),
        )

    @grpc_edge
    async def DeliverInteroperabilityResponse(
        self, request: pb.InteroperabilityResponse, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """No-match IDR or joint IDR/IAR from CJIS."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.CJIS_IAFIS,
            handler=lambda s: self._bureau.take_interoperability_response(s, request),
        )

    @grpc_edge
    async def DeliverDetainer(
        self, request: pb.DetainerMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """I-247 detainer from an ICE field office."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.ICE_FIELD,
            handler=lambda s: self._bureau.take_detainer(s, request),
        )

    @grpc_edge
    async def RegisterState(self, request: pb.State, context: grpc.aio.ServicerContext) -> pb.State:
        """Creates or replaces a state."""
        async with self._rt.db.session() as session:
            return await self._bureau.register_state(session, request)

    @grpc_edge
    async def RegisterAgency(
        self, request: pb.Agency, context: grpc.aio.ServicerContext
    ) -> pb.Agency:
        """Creates or replaces an agency."""
        async with self._rt.db.session() as session:
            return await self._bureau.register_agency(session, request)

    @grpc_edge
    async def SetMoaStatus(
        self, request: pb.SetMoaStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.State:
        """Changes a state's MOA status."""
        async with self._rt.db.session() as session:
            return await self._bureau.set_moa_status(session, request)


class SibProvider:
    """Runs the SIB service in the shared host."""

    name = Agency.SIB
    measure_counts = staticmethod(measures.counts)
    metadatas: Sequence[MetaData] = (SibBase.metadata,)

    def __init__(self, settings: SibSettings) -> None:
        self.settings = settings
        self.bureau: StateBureau | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Rebuilds the state files; dead CARs and CPIs become ERRTs to the LEA."""
        self.bureau = StateBureau(
            clock=runtime.clock, outbox=runtime.outbox, threshold=self.settings.match_threshold
        )
        async with runtime.db.session() as session:
            await self.bureau.load(session)
        runtime.outbox.on_dead_letter(MessageType.CAR, self.bureau.submission_dead)
        runtime.outbox.on_dead_letter(MessageType.CPI, self.bureau.submission_dead)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the StateIdentificationBureau servicer."""
        assert self.bureau is not None, "on_after_init runs first"
        pb_grpc.add_StateIdentificationBureauServicer_to_server(
            SibServicer(runtime, self.bureau), server
        )
        return [pb.DESCRIPTOR.services_by_name["StateIdentificationBureau"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The LEAs' agency edge."""
        assert self.bureau is not None, "on_after_init runs first"
        return build_router(runtime, self.bureau)

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Nothing to release: the database is the source of truth."""
