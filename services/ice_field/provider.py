"""The ICE field office provider: wiring and lifecycle of field operations and its case agent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.ice_field.v1 import ice_field_pb2 as pb
from scfed.ice_field.v1 import ice_field_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime.metrics import ServiceMetrics
from ..runtime.periodic import AT_ONCE, PeriodicTask
from ..runtime.server import Runtime
from . import measures
from . import metrics as field_metrics
from .api import build_router
from .config import IceFieldSettings
from .custody import CustodyPolicy
from .decision import DiscretionPolicy
from .domain import CaseTiming, FieldOperations
from .models import IceFieldBase
from .servicer import IceFieldServicer


class IceFieldProvider:
    """Runs the ICE field office service in the shared host."""

    name = Agency.ICE_FIELD
    measure_counts = staticmethod(measures.counts)
    metadatas: Sequence[MetaData] = (IceFieldBase.metadata,)

    def __init__(self, settings: IceFieldSettings) -> None:
        self.settings = settings
        self.operations: FieldOperations | None = None
        self._agent: PeriodicTask | None = None

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
        self._agent = PeriodicTask(
            "ice-field-cases", lambda: self._move_cases(runtime), poll_s=s.case_poll_s
        )
        self._agent.start()

    async def _move_cases(self, runtime: Runtime) -> float | None:
        """One round of the case agent; goes again at once while cases moved."""
        assert self.operations is not None
        async with runtime.db.session() as session:
            moved = await self.operations.progress(session)
        return AT_ONCE if moved else None

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the IceField servicer."""
        assert self.operations is not None, "on_after_init runs first"
        pb_grpc.add_IceFieldServicer_to_server(IceFieldServicer(runtime, self.operations), server)
        return [pb.DESCRIPTOR.services_by_name["IceField"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The case view and the referrals for prosecution."""
        assert self.operations is not None, "on_after_init runs first"
        return build_router(runtime, self.operations)

    def register_metrics(self, metrics: ServiceMetrics, runtime: Runtime) -> None:
        """Detainers by level, beds and ATD in use against capacity."""
        field_metrics.register(metrics)

    async def on_reset(self, runtime: Runtime) -> None:
        """Nothing in memory: the case agent reads its cases from the database each round."""

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Nothing in memory: the case agent reads the loaded cases at its next round."""

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Stops the case agent; cases due meanwhile are taken on at the next start."""
        if self._agent is not None:
            await self._agent.stop()
            self._agent = None
