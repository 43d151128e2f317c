"""IDENT's gRPC edge over the identity gallery."""

from __future__ import annotations

import functools

import grpc

from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2 as pb
from scfed.ident.v1 import ident_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime import audit
from ..runtime.audit import AuditOutcome, Purpose
from ..runtime.edge import grpc_edge
from ..runtime.errors import InvalidArgument
from ..runtime.server import Runtime
from .domain import IdentGallery


class IdentServicer(pb_grpc.IdentServicer):
    """Translates IDENT RPCs to the gallery and back."""

    def __init__(self, runtime: Runtime, gallery: IdentGallery) -> None:
        self._rt = runtime
        self._gallery = gallery

    @grpc_edge
    async def Search(
        self, request: pb.IdentSearch, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """Interoperability search from CJIS, audited (a refusal too) as the sender's."""
        who = audit.caller(context, request.envelope)
        tcn = request.envelope.tcr or request.envelope.tcn
        async with audit.refusals(
            self._rt.db, who=who, rpc="Search", tcn=tcn, purpose=Purpose.BOOKING
        ):
            return await self._rt.inbox.take(
                request,
                peer=Agency.CJIS_IAFIS,
                handler=functools.partial(self._gallery.search, who=who),
            )

    @grpc_edge
    async def RecordEncounter(
        self, request: pb.EncounterNotice, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """An encounter from the field office (a removal), taken once."""
        return await self._rt.inbox.take(
            request, peer=Agency.ICE_FIELD, handler=self._gallery.record_encounter
        )

    @grpc_edge
    async def EnrollEncounters(
        self, request: pb.EnrollEncountersRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnrollEncountersResponse:
        """Enrols encounters in one transaction."""
        async with self._gallery.changing(self._rt.db) as session:
            enrollments = await self._gallery.enroll(session, request.encounters)
        return pb.EnrollEncountersResponse(enrollments=enrollments)

    @grpc_edge
    async def Enroll(
        self, request: pb.EnrollRequest, context: grpc.aio.ServicerContext
    ) -> pb.Enrollment:
        """Enrols one encounter: attached to a matching FIN or under a new one."""
        if not request.HasField("encounter"):
            raise InvalidArgument("encounter is required")
        async with self._gallery.changing(self._rt.db) as session:
            (enrollment,) = await self._gallery.enroll(session, [request.encounter])
        return enrollment

    @grpc_edge
    async def Identify(
        self, request: pb.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.IdentifyResponse:
        """1:N identification with a candidate list, audited as an administrative search."""
        who = audit.caller(context)
        async with audit.refusals(
            self._rt.db, who=who, rpc="Identify", tcn="", purpose=Purpose.ADMINISTRATIVE
        ):
            response = self._gallery.identify(request)
            await audit.record_alone(
                self._rt.db,
                who=who,
                rpc="Identify",
                tcn="",
                purpose=Purpose.ADMINISTRATIVE,
                outcome=AuditOutcome.MATCH if response.match else AuditOutcome.NO_MATCH,
                candidates=len(response.candidates),
                detail=f"threshold {response.threshold:.3f}",
            )
        return response

    @grpc_edge
    async def DeleteIdentity(
        self, request: pb.DeleteIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteIdentityResponse:
        """Deletes an identity and its prints."""
        async with self._gallery.changing(self._rt.db) as session:
            response = await self._gallery.delete_identity(session, request.fin)
        return response

    @grpc_edge
    async def GetIdentity(
        self, request: pb.GetIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.Identity:
        """One identity, the read audited."""
        async with audit.audited_read(
            self._rt.db, who=audit.caller(context), rpc="GetIdentity", detail=f"fin {request.fin}"
        ) as session:
            return await self._gallery.identity(session, request.fin)

    @grpc_edge
    async def Info(
        self, request: pb.InfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.InfoResponse:
        """Template layout and gallery."""
        return self._gallery.info()
