"""The SIB's gRPC edge: responses from CJIS and the field offices, and configuration."""

from __future__ import annotations

import grpc

from scfed.common.v1 import common_pb2
from scfed.sib.v1 import sib_pb2 as pb
from scfed.sib.v1 import sib_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime import audit
from ..runtime.edge import grpc_edge
from ..runtime.server import Runtime
from . import credentials
from .domain import StateBureau


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
        return await self._rt.inbox.take(
            request, peer=Agency.CJIS_IAFIS, handler=self._bureau.take_sre
        )

    @grpc_edge
    async def DeliverErrt(
        self, request: pb.ErrtMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """ERRT from CJIS."""
        return await self._rt.inbox.take(
            request, peer=Agency.CJIS_IAFIS, handler=self._bureau.take_errt
        )

    @grpc_edge
    async def DeliverInteroperabilityResponse(
        self, request: pb.InteroperabilityResponse, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """No-match IDR or joint IDR/IAR from CJIS."""
        return await self._rt.inbox.take(
            request, peer=Agency.CJIS_IAFIS, handler=self._bureau.take_interoperability_response
        )

    @grpc_edge
    async def DeliverDetainer(
        self, request: pb.DetainerMessage, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        """I-247 detainer from an ICE field office."""
        return await self._rt.inbox.take(
            request, peer=Agency.ICE_FIELD, handler=self._bureau.take_detainer
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

    @grpc_edge
    async def SuspendJurisdiction(
        self, request: pb.SuspendJurisdictionRequest, context: grpc.aio.ServicerContext
    ) -> pb.JurisdictionAccess:
        """Suspends one jurisdiction's interoperability (MOA VIII)."""
        async with self._rt.db.session() as session:
            return await self._bureau.suspend_jurisdiction(
                session, request, who=audit.caller(context)
            )

    @grpc_edge
    async def ResumeJurisdiction(
        self, request: pb.ResumeJurisdictionRequest, context: grpc.aio.ServicerContext
    ) -> pb.JurisdictionAccess:
        """Lifts a jurisdiction's suspension."""
        async with self._rt.db.session() as session:
            return await self._bureau.resume_jurisdiction(
                session, request, who=audit.caller(context)
            )

    @grpc_edge
    async def IssueLeaCredential(
        self, request: pb.IssueLeaCredentialRequest, context: grpc.aio.ServicerContext
    ) -> pb.LeaCredential:
        """Issues a fresh API key for an LEA, revoking its previous one."""
        async with self._rt.db.session() as session:
            issued = await credentials.issue(session, request.ori, now=self._rt.clock.now())
            audit.record(
                session,
                who=audit.caller(context),
                rpc="IssueLeaCredential",
                tcn="",
                purpose=audit.Purpose.ADMINISTRATIVE,
                outcome=audit.AuditOutcome.ISSUED,
                detail=f"API key for {issued.ori}; the previous one revoked",
            )
        reply = pb.LeaCredential(ori=issued.ori, api_key=issued.api_key)
        reply.issued_at.FromDatetime(issued.issued_at)
        return reply
