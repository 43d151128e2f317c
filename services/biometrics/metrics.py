"""A gallery service's metrics: how long its 1:N searches take and how many records it holds."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

from ..runtime.metrics import SEARCH_BUCKETS, ServiceMetrics
from .store import StoredGallery


def register_gallery_metrics(
    metrics: ServiceMetrics,
    gallery: StoredGallery,
    *,
    prefix: str,
    searched: str,
    size_name: str,
    size_help: str,
) -> None:
    """Adds `<prefix>_search_seconds{rpc}`, observed by the gallery's timed searches, and the
    gauge `size_name`: the records in its index, read from memory at each scrape."""
    histogram = Histogram(
        f"{prefix}_search_seconds",
        f"How long a 1:N tenprint search of {searched} took, by the RPC it served",
        ["rpc"],
        buckets=SEARCH_BUCKETS,
        registry=metrics.registry,
    )
    gallery.on_search = lambda rpc, seconds: histogram.labels(rpc=rpc).observe(seconds)
    Gauge(size_name, size_help, registry=metrics.registry).set_function(
        lambda: float(len(gallery.engine))
    )
