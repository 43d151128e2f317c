"""A gallery service's metrics: how long its 1:N searches take, how many records it holds, and
the match threshold in use with the gallery size it was computed for."""

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
    """Adds `<prefix>_search_seconds{rpc}`, observed by the gallery's timed searches, the
    gauge `size_name`: the records in its index, and the gauges `<prefix>_match_threshold` and
    `<prefix>_match_threshold_gallery_size`: the threshold in use and the gallery size it was
    computed for, all read from memory at each scrape."""
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
    Gauge(
        f"{prefix}_match_threshold",
        f"The match threshold {searched} decides with by default",
        registry=metrics.registry,
    ).set_function(lambda: gallery.engine.threshold)
    Gauge(
        f"{prefix}_match_threshold_gallery_size",
        f"The gallery size the match threshold of {searched} was computed for",
        registry=metrics.registry,
    ).set_function(lambda: float(gallery.engine.threshold_gallery_size))
