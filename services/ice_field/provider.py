"""The ICE field office provider: gRPC edge over field operations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.ice_field.v1 import ice_field_pb2_grpc as pb_grpc
from services.federation import Agency
from services.ice_field import measures
from services.ice_field.config import IceFieldSettings
from services.ice_field.custody import CustodyPolicy
from services.ice_field.decision import DiscretionPolicy
from services.ice_field.domain import CaseTiming, FieldOperations, case_summary
from services.ice_field.models import IceFieldBase
from services.runtime.server import Runtime, grpc_edge

log = logging.getLogger(__name__)


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
            peer=Agency.LESC,
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
            peer=Agency.SIB,
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
        """One detainer."""
        async with self._rt.db.session() as session:
            return await self._ops.detainer(session, request.detainer_id)


class IceFieldProvider:
    """Runs the ICE field office service in the shared host."""

    name = Agency.ICE_FIELD
    measure_counts = staticmethod(measures.counts)
    metadatas: Sequence[MetaData] = (IceFieldBase.metadata,)

    def __init__(self, settings: IceFieldSettings) -> None:
        self.settings = settings
        self.operations: FieldOperations | None = None
        self._agent: asyncio.Task[None] | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Sets up field operations and starts the agent that moves cases on in agency time."""
        s = self.settings
        self.operations = FieldOperations(
            clock=runtime.clock,
            outbox=runtime.outbox,
            policy=DiscretionPolicy(level_2=s.discretion_level_2, level_3=s.discretion_level_3),
            max_hold_hours=s.max_hold_hours,
            timing=CaseTiming(
                pickup=timedelta(hours=s.pickup_hours),
                hearing=timedelta(days=s.hearing_days),
                travel_document=timedelta(days=s.travel_document_days),
                removal=timedelta(days=s.removal_days),
            ),
            custody=CustodyPolicy(
                high_risk_grounds=frozenset(
                    g.strip() for g in s.atd_high_risk_grounds.split(",") if g.strip()
                )
            ),
        )
        self._agent = asyncio.create_task(self._move_cases(runtime), name="ice-field-cases")

    async def _move_cases(self, runtime: Runtime) -> None:
        assert self.operations is not None
        while True:
            try:
                async with runtime.db.session() as session:
                    moved = await self.operations.progress(session)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ice_field: moving cases failed; trying again")
                moved = 0
            if not moved:
                await asyncio.sleep(self.settings.case_poll_s)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the IceField servicer."""
        assert self.operations is not None, "on_after_init runs first"
        pb_grpc.add_IceFieldServicer_to_server(IceFieldServicer(runtime, self.operations), server)
        return [pb.DESCRIPTOR.services_by_name["IceField"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The case view: how many removal cases stand in each state."""
        router = APIRouter(prefix="/v1", tags=["ice_field"])

        @router.get("/cases-summary")
        async def cases_summary() -> dict[str, object]:
            """Cases by state, and how many are still open (not removed, lapsed or relieved)."""
            async with runtime.db.session() as session:
                return await case_summary(session)

        return router

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Stops the case agent; cases due meanwhile are taken on at the next start."""
        if self._agent is not None:
            self._agent.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._agent
            self._agent = None
