"""The CJIS/IAFIS gRPC edge over the criminal master file."""

from __future__ import annotations

import functools

import grpc

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as pb
from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc as pb_grpc
from scfed.common.v1 import common_pb2

from ..federation import Agency
from ..runtime import audit
from ..runtime.delivery import MessageHandler, Received
from ..runtime.edge import grpc_edge
from ..runtime.server import Runtime
from .domain import CriminalMasterFile


class CjisServicer(pb_grpc.CjisIafisServicer):
    """Translates CJIS RPCs to the master file and back."""

    def __init__(self, runtime: Runtime, master_file: CriminalMasterFile) -> None:
        self._rt = runtime
        self._mf = master_file

    async def _take_opening(
        self,
        request: Received,
        handler: MessageHandler[Received],
    ) -> common_pb2.Ack:
        """An opening CAR or CPI from a SIB, received with the master file's enrolment staging."""
        async with self._mf.enrollments.transaction():
            ack = await self._rt.inbox.take(
                request, peer=Agency.SIB, handler=handler, follow_on=False
            )
        await self._mf.after_commit(self._rt.db)
        return ack

    @grpc_edge
    async def SubmitCar(self, request: pb.Car, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """CAR from a SIB: the master-file search is audited (a refusal too) as the sender's."""
        who = audit.caller(context, request.envelope)
        async with audit.refusals(
            self._rt.db,
            who=who,
            rpc="SubmitCar",
            tcn=request.envelope.tcn,
            purpose=audit.Purpose.BOOKING,
        ):
            return await self._take_opening(request, functools.partial(self._mf.take_car, who=who))

    @grpc_edge
    async def SubmitCpi(self, request: pb.Cpi, context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        """CPI from an NFF state's SIB."""
        return await self._take_opening(request, self._mf.take_cpi)

    @grpc_edge
    async def DeliverIdr(
        self, request: pb.IdrMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IDR from IDENT."""
        return await self._rt.inbox.take(request, peer=Agency.IDENT, handler=self._mf.take_idr)

    @grpc_edge
    async def AcknowledgeIaq(
        self, request: pb.IaqAcknowledgement, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IAQ acknowledgement from LESC."""
        return await self._rt.inbox.take(request, peer=Agency.LESC, handler=self._mf.take_iaq_ack)

    @grpc_edge
    async def DeliverIar(
        self, request: pb.IarMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """IAR from LESC."""
        return await self._rt.inbox.take(request, peer=Agency.LESC, handler=self._mf.take_iar)

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
        """Looks up one rap sheet, the read audited."""
        async with audit.audited_read(
            self._rt.db,
            who=audit.caller(context),
            rpc="GetCriminalHistory",
            detail=f"fbi_number {request.fbi_number}",
        ) as session:
            return await self._mf.history(session, request.fbi_number)
