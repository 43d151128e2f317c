"""IDENT's gRPC edge over the identity gallery."""

from __future__ import annotations

import grpc

from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2 as pb
from scfed.ident.v1 import ident_pb2_grpc as pb_grpc

from ..federation import Agency
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
        """Interoperability search from CJIS."""
        return await self._rt.inbox.take(
            request, peer=Agency.CJIS_IAFIS, handler=self._gallery.search
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
        """1:N identification with a candidate list."""
        return self._gallery.identify(request)

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
        """One identity."""
        async with self._rt.db.session() as session:
            return await self._gallery.identity(session, request.fin)

    @grpc_edge
    async def Info(
        self, request: pb.InfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.InfoResponse:
        """Template layout and gallery."""
        return self._gallery.info()
