"""The IDENT provider: wiring and lifecycle of the identity gallery and its edges."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from fastapi import APIRouter
from sqlalchemy import MetaData

from scfed.ident.v1 import ident_pb2 as pb
from scfed.ident.v1 import ident_pb2_grpc as pb_grpc

from ..biometrics.metrics import register_gallery_metrics
from ..biometrics.store import BiometricStore
from ..federation import Agency
from ..runtime.metrics import ServiceMetrics
from ..runtime.server import Runtime
from .api import build_router
from .config import IdentSettings
from .domain import IdentGallery
from .models import IdentBase, biometric_changes
from .servicer import IdentServicer


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
        self.gallery = IdentGallery(clock=runtime.clock, outbox=runtime.outbox, store=store)
        await self.gallery.start(runtime.db)

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the Ident servicer."""
        assert self.gallery is not None, "on_after_init runs first"
        pb_grpc.add_IdentServicer_to_server(IdentServicer(runtime, self.gallery), server)
        return [pb.DESCRIPTOR.services_by_name["Ident"].full_name]

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """IDENT's statistics route."""
        assert self.gallery is not None, "on_after_init runs first"
        return build_router(runtime, self.gallery)

    def register_metrics(self, metrics: ServiceMetrics, runtime: Runtime) -> None:
        """Search latency and gallery size."""
        assert self.gallery is not None, "on_after_init runs first"
        register_gallery_metrics(
            metrics,
            self.gallery,
            prefix="scfed_ident",
            searched="IDENT's gallery",
            size_name="scfed_ident_gallery_size",
            size_help="Identities in IDENT's biometric index",
        )

    async def on_reset(self, runtime: Runtime) -> None:
        """Empties the biometric index."""
        assert self.gallery is not None, "on_after_init runs first"
        await self.gallery.reset(runtime.db)

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Rebuilds the biometric index from the loaded identities."""
        assert self.gallery is not None, "on_after_init runs first"
        await self.gallery.rebuild(runtime.db)

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Saves the biometric index (the database stays the source of truth)."""
        if self.gallery is not None:
            await self.gallery.stop(runtime.db)
