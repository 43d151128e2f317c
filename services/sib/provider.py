"""The SIB provider: wiring and lifecycle of the bureau, its gRPC edge and its HTTP edge."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.sib.v1 import sib_pb2 as pb
from scfed.sib.v1 import sib_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime.envelope import MessageType
from ..runtime.server import Runtime
from . import measures
from .api import build_router
from .config import SibSettings
from .domain import StateBureau
from .models import SibBase
from .servicer import SibServicer
from .transactions import build_transactions_router


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
        mode = self.settings.lea_credentials
        router = build_router(runtime, self.bureau, lea_credentials=mode)
        router.include_router(build_transactions_router(runtime, self.bureau, lea_credentials=mode))
        return router

    async def on_reset(self, runtime: Runtime) -> None:
        """Empties every state's tenprint file."""
        assert self.bureau is not None, "on_after_init runs first"
        await self.bureau.clear()

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Rebuilds every state's tenprint file from the loaded state records."""
        assert self.bureau is not None, "on_after_init runs first"
        await self.bureau.clear()
        async with runtime.db.session() as session:
            await self.bureau.load(session)

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Nothing to release: the database is the source of truth."""
