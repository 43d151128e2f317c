"""The IDENT provider: gRPC edge over the identity gallery."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.ident.v1 import ident_pb2 as pb
from scfed.ident.v1 import ident_pb2_grpc as pb_grpc
from services.biometrics.store import BiometricStore
from services.federation import Agency
from services.ident.config import IdentSettings
from services.ident.domain import IdentGallery
from services.ident.models import IdentBase, biometric_changes
from services.runtime.errors import InvalidArgument
from services.runtime.server import Runtime, grpc_edge


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
        return await self._rt.inbox.receive(
            request,
            has_envelope=request.HasField("envelope"),
            peer=Agency.CJIS_IAFIS,
            handler=lambda s: self._gallery.search(s, request),
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


class IdentProvider:
    """Runs the IDENT service in the shared host."""

    name = Agency.IDENT
    metadatas: Sequence[MetaData] = (IdentBase.metadata,)

    def __init__(self, settings: IdentSettings) -> None:
        self.settings = settings
        self.gallery: IdentGallery | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Loads the saved biometric index, or rebuilds it from the identities on file."""
        store = BiometricStore.for_settings(self.settings, biometric_changes)
        self.gallery = IdentGallery(
            engine=store.engine, clock=runtime.clock, outbox=runtime.outbox, store=store
        )
        await self.gallery.start(runtime.db)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the Ident servicer."""
        assert self.gallery is not None, "on_after_init runs first"
        pb_grpc.add_IdentServicer_to_server(IdentServicer(runtime, self.gallery), server)
        return [pb.DESCRIPTOR.services_by_name["Ident"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """IDENT's statistics route."""
        gallery = self.gallery
        assert gallery is not None, "on_after_init runs first"
        router = APIRouter(prefix="/v1", tags=["ident"])

        @router.get("/stats")
        async def stats() -> dict[str, int]:
            """Gallery size, searches answered and matches among them."""
            async with runtime.db.session() as session:
                return {"gallery_size": len(gallery.engine), **await gallery.search_counts(session)}

        return router

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Saves the biometric index (the database stays the source of truth)."""
        if self.gallery is not None:
            await self.gallery.stop(runtime.db)
