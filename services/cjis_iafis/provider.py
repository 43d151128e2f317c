"""The CJIS/IAFIS provider: wiring and lifecycle of the criminal master file and its edge."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.cjis_iafis.v1 import cjis_iafis_pb2 as pb
from scfed.cjis_iafis.v1 import cjis_iafis_pb2_grpc as pb_grpc

from ..biometrics.metrics import register_gallery_metrics
from ..biometrics.store import BiometricStore
from ..federation import Agency
from ..runtime.metrics import ServiceMetrics
from ..runtime.server import Runtime
from .config import CjisSettings
from .domain import CriminalMasterFile
from .models import CjisBase, biometric_changes
from .servicer import CjisServicer


class CjisProvider:
    """Runs the CJIS/IAFIS service in the shared host."""

    name = Agency.CJIS_IAFIS
    metadatas: Sequence[MetaData] = (CjisBase.metadata,)

    def __init__(self, settings: CjisSettings) -> None:
        self.settings = settings
        self.master_file: CriminalMasterFile | None = None

    async def on_after_init(self, runtime: Runtime) -> None:
        """Loads the saved tenprint index, or rebuilds it from the master file."""
        store = BiometricStore.for_settings(self.settings, biometric_changes)
        self.master_file = CriminalMasterFile(
            clock=runtime.clock, outbox=runtime.outbox, store=store
        )
        await self.master_file.start(runtime.db)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the CjisIafis servicer."""
        assert self.master_file is not None, "on_after_init runs first"
        pb_grpc.add_CjisIafisServicer_to_server(CjisServicer(runtime, self.master_file), server)
        return [pb.DESCRIPTOR.services_by_name["CjisIafis"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """CJIS has no HTTP routes of its own."""
        return None

    def register_metrics(self, metrics: ServiceMetrics, runtime: Runtime) -> None:
        """Tenprint search latency and the criminal master file's size."""
        assert self.master_file is not None, "on_after_init runs first"
        register_gallery_metrics(
            metrics,
            self.master_file,
            prefix="scfed_iafis",
            searched="the criminal master file",
            size_name="scfed_iafis_master_file_size",
            size_help="Subjects (FBI numbers) in the criminal master file's tenprint index",
        )

    async def on_reset(self, runtime: Runtime) -> None:
        """Empties the tenprint index."""
        assert self.master_file is not None, "on_after_init runs first"
        await self.master_file.reset(runtime.db)

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Rebuilds the tenprint index from the loaded master file."""
        assert self.master_file is not None, "on_after_init runs first"
        await self.master_file.rebuild(runtime.db)

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Saves the tenprint index (the database stays the source of truth)."""
        if self.master_file is not None:
            await self.master_file.stop(runtime.db)
