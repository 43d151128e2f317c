"""The gRPC AdminService every service serves: the control routes of admin.py over gRPC, on
the same functions (control.py, snapshot.py); DomainErrors become their gRPC status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from scfed.admin.v1 import admin_pb2 as pb
from scfed.admin.v1 import admin_pb2_grpc as pb_grpc

from .audit import caller
from .control import ClockView, advance_clock, reset_service, set_clock
from .edge import grpc_edge
from .snapshot import load_snapshot, save_snapshot

if TYPE_CHECKING:
    from .server import Runtime, ServiceProvider

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["AdminService"].full_name


def _clock(view: ClockView) -> pb.ClockView:
    return pb.ClockView(service=view.service, clock=view.clock, now=view.now)


class AdminServicer(pb_grpc.AdminServiceServicer):
    """Reset, clock control and snapshots of one service over gRPC."""

    def __init__(self, provider: ServiceProvider, runtime: Runtime) -> None:
        self.provider = provider
        self.runtime = runtime

    @grpc_edge
    async def Reset(
        self, request: pb.ResetRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetResponse:
        """Empties the service back to its configuration."""
        report = await reset_service(self.provider, self.runtime, who=caller(context))
        return pb.ResetResponse(
            service=report.service,
            deleted=report.deleted,
            faults_cleared=report.faults_cleared,
            seconds=report.seconds,
        )

    @grpc_edge
    async def AdvanceClock(
        self, request: pb.AdvanceClockRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdvanceClockResponse:
        """Steps a manual clock forward."""
        step = request.WhichOneof("step")
        view = advance_clock(
            self.provider,
            self.runtime,
            seconds=request.seconds if step == "seconds" else None,
            duration=request.duration if step == "duration" else None,
        )
        return pb.AdvanceClockResponse(clock=_clock(view))

    @grpc_edge
    async def SetClock(
        self, request: pb.SetClockRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetClockResponse:
        """Re-paces an accelerated clock."""
        view = await set_clock(self.provider, self.runtime, request.spec)
        return pb.SetClockResponse(clock=_clock(view))

    @grpc_edge
    async def SaveSnapshot(
        self, request: pb.SaveSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> pb.SaveSnapshotResponse:
        """Dumps the service's state as a snapshot document."""
        snapshot = await save_snapshot(self.provider, self.runtime)
        return pb.SaveSnapshotResponse(
            document=snapshot.document,
            rows=snapshot.report.rows,
            seconds=snapshot.report.seconds,
        )

    @grpc_edge
    async def LoadSnapshot(
        self, request: pb.LoadSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> pb.LoadSnapshotResponse:
        """Replaces the service's state with a snapshot document's."""
        report = await load_snapshot(self.provider, self.runtime, request.document)
        return pb.LoadSnapshotResponse(
            service=report.service, rows=report.rows, seconds=report.seconds
        )
