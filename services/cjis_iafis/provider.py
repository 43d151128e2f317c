"""The CJIS/IAFIS provider: gRPC edge over the criminal master file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as pb
from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc as pb_grpc
from scfed.common.v1 import common_pb2
from services.biometrics.store import BiometricStore
from services.cjis_iafis.config import CjisSettings
from services.cjis_iafis.domain import CriminalMasterFile
from services.cjis_iafis.models import CjisBase, biometric_changes
from services.federation import Agency
from services.runtime.message_routes import EnvelopedMessage
from services.runtime.server import Runtime, grpc_edge


class CjisServicer(pb_grpc.CjisIafisServicer):
    """Translates CJIS RPCs to the master file and back."""

    def __init__(self, runtime: Runtime, master_file: CriminalMasterFile) -> None:
        self._rt = runtime
        self._mf = master_file

    async def _receive(
        self,
        request: EnvelopedMessage,
        *,
        has_envelope: bool,
        peer: str,
        handler: Callable[[AsyncSession], Awaitable[str | None]],
    ) -> common_pb2.Ack:
        """An opening CAR or CPI, received with the master file's enrolment staging."""
        async with self._mf.enrollments.transaction():
            ack = await self._rt.inbox.receive(
                request, has_envelope=has_envelope, peer=peer, handler=handler, follow_on=False
            )
        await self._mf.after_commit(self._rt.db)
        return ack

    @grpc_edge
    async def SubmitCar(self, request: pb.Car, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """CAR from a SIB."""
        return await self._receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.SIB,
            handler=lambda s: self._mf.take_car(s, request),
        )

    @grpc_edge
    async def SubmitCpi(self, request: pb.Cpi, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """CPI from an NFF state's SIB."""
        return await self._receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.SIB,
            handler=lambda s: self._mf.take_cpi(s, request),
        )

    @grpc_edge
    async def DeliverIdr(
        self, request: pb.IdrMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IDR from IDENT."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.IDENT,
            handler=lambda s: self._mf.take_idr(s, request),
        )

    @grpc_edge
    async def AcknowledgeIaq(
        self, request: pb.IaqAcknowledgement, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IAQ acknowledgement from LESC."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.LESC,
            handler=lambda s: self._mf.take_iaq_ack(s, request),
        )

    @grpc_edge
    async def DeliverIar(
        self, request: pb.IarMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IAR from LESC."""
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.LESC,
            handler=lambda s: self._mf.take_iar(s, request),
        )

    @grpc_edge
    async def EnrollCriminalRecords(
        self, request: pb.EnrollCriminalRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnrollCriminalRecordsResponse:
        """Seeds criminal records."""
        async with self._mf.changing(self._rt.db) as session:
            numbers = await self._mf.enroll_records(session, request.records)
        return pb.EnrollCriminalRecordsResponse(fbi_numbers=numbers)

    @grpc_edge
    async def GetCriminalHistory(
        self, request: pb.GetCriminalHistoryRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.CriminalHistory:
        """Looks up one rap sheet."""
        async with self._rt.db.session() as session:
            return await self._mf.history(session, request.fbi_number)


class CjisProvider:
    """Runs the CJIS/IAFIS service in the shared host."""

    name = Agency.CJIS_IAFIS
    metadatas: Sequence[MetaData] = (CjisBase.metadata,)

    def __init__(self, settings: CjisSettings) -> None:
        self.settings = settings
        self.master_file: CriminalMasterFile | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Loads the saved tenprint index, or rebuilds it from the master file."""
        store = BiometricStore.for_settings(self.settings, biometric_changes)
        self.master_file = CriminalMasterFile(
            engine=store.engine, clock=runtime.clock, outbox=runtime.outbox, store=store
        )
        await self.master_file.start(runtime.db)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the CjisIafis servicer."""
        assert self.master_file is not None, "on_after_init runs first"
        pb_grpc.add_CjisIafisServicer_to_server(CjisServicer(runtime, self.master_file), server)
        return [pb.DESCRIPTOR.services_by_name["CjisIafis"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """CJIS has no HTTP routes of its own."""
        return None

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Saves the tenprint index (the database stays the source of truth)."""
        if self.master_file is not None:
            await self.master_file.stop(runtime.db)
