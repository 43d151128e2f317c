"""The LESC provider: wiring and lifecycle of the determination center, its desk and edges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.lesc.v1 import lesc_pb2 as pb
from scfed.lesc.v1 import lesc_pb2_grpc as pb_grpc

from ..federation import Agency
from ..runtime.metrics import ServiceMetrics
from ..runtime.periodic import AT_ONCE, PeriodicTask
from ..runtime.server import Runtime
from . import measures
from . import metrics as desk_metrics
from .api import build_router
from .config import LescSettings
from .desk import DeskPolicy, parse_shifts
from .determination import default_status_rules
from .domain import StatusDeterminationCenter
from .models import LescBase
from .offense_levels import load_table
from .servicer import LescServicer


class LescProvider:
    """Runs the LESC service in the shared host."""

    name = Agency.LESC
    measure_counts = staticmethod(measures.counts)
    metadatas: Sequence[MetaData] = (LescBase.metadata,)

    def __init__(self, settings: LescSettings) -> None:
        self.settings = settings
        self.center: StatusDeterminationCenter | None = None
        self._desk: PeriodicTask | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Sets up the desk and starts the analysts' work loop in agency time."""
        s = self.settings
        self.center = StatusDeterminationCenter(
            clock=runtime.clock,
            outbox=runtime.outbox,
            table=load_table(s.offense_table),
            rules=default_status_rules(),
            policy=DeskPolicy(
                auto_min_score=s.auto_min_score,
                vtc_below_score=s.vtc_below_score,
                analyst_time=timedelta(minutes=s.analyst_minutes),
                vtc_time=timedelta(minutes=s.vtc_minutes),
                target=timedelta(minutes=s.iar_target_minutes),
            ),
            shifts=parse_shifts(s.shifts),
        )
        self._desk = PeriodicTask(
            "lesc-desk", lambda: self._desk_round(runtime), poll_s=s.desk_poll_s
        )
        self._desk.start()

    async def _desk_round(self, runtime: Runtime) -> float | None:
        """One round of the analysts' work; goes again at once while cases changed."""
        assert self.center is not None
        async with runtime.db.session() as session:
            changed = await self.center.work(session)
        if not changed:
            return None
        runtime.outbox.notify()
        return AT_ONCE

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the Lesc servicer."""
        assert self.center is not None, "on_after_init runs first"
        pb_grpc.add_LescServicer_to_server(LescServicer(runtime, self.center), server)
        return [pb.DESCRIPTOR.services_by_name["Lesc"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """The desk's case view."""
        assert self.center is not None, "on_after_init runs first"
        return build_router(runtime, self.center)

    def register_metrics(self, metrics: ServiceMetrics, runtime: Runtime) -> None:
        """The desk's queue by route, late answers, overdue cases and analysts on duty."""
        assert self.center is not None, "on_after_init runs first"
        desk_metrics.register(metrics, self.center)

    async def on_reset(self, runtime: Runtime) -> None:
        """Nothing in memory: the desk reads its cases from the database each round."""

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Nothing in memory: the desk reads the loaded cases at its next round."""

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Stops the desk; queued and in-work cases are picked up at the next start."""
        if self._desk is not None:
            await self._desk.stop()
            self._desk = None
