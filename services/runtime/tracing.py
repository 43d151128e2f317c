"""Distributed tracing with OpenTelemetry: one trace per booking, across the outbox.

Each host has a tracer provider of its own (never the process-global one: the tests run the
five services in one process, each with its own provider). With tracing off the host has none,
and nothing is instrumented: no middleware, no interceptor, no span, no thread. With it on:

- every gRPC call and HTTP request at the edges is a server span (the OpenTelemetry gRPC aio
  and FastAPI instrumentations), whose parent is the caller's `traceparent`, when it sent one;
- `Outbox.add` stores the active span's W3C `traceparent` and `tracestate` with the row, and the
  sender (direct path or poll) restores them as the parent of an "outbox.wait" span (from the
  row's creation to its sending) and an "outbox.deliver" client span, whose context goes to the
  peer in the call's metadata;
- `Inbox.receive` handles each message in an "inbox.receive" span, and the journal entries it
  writes carry the trace id.

Spans are exported by OTLP to the endpoint the standard variables name
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT); without one they are
made (the journal and the logs get trace ids) but go nowhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TracingMode = Literal["off", "on", "auto"]
OtlpProtocol = Literal["grpc", "http/protobuf"]

# The standard variables naming where spans go, the traces-only one first.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# The HTTP header (and gRPC metadata key) of the W3C trace context.
TRACEPARENT_HEADER = "traceparent"
# The name of the tracer the runtime's own spans come from.
TRACER_NAME = "scfed"
# The longest tracestate stored with an outbox row (the W3C limit is 32 members of 256 bytes;
# a longer one is dropped, the traceparent kept).
MAX_TRACESTATE = 512
# Routes of the HTTP edge that are not traced: probes and scrapes, many times a minute.
UNTRACED_PATHS = "/healthz,/readyz,/metrics"

_W3C = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


class TracingMisconfigured(ValueError):
    """The OTLP variables name something the exporter cannot do."""


def otlp_endpoint(environ: Mapping[str, str]) -> str | None:
    """The OTLP endpoint the standard variables name, or None."""
    for name in ENDPOINT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def otlp_protocol(environ: Mapping[str, str]) -> OtlpProtocol:
    """The OTLP protocol the standard variables name (the specification's default,
    http/protobuf); TracingMisconfigured for one the exporters do not speak."""
    for name in PROTOCOL_VARIABLES:
        value = environ.get(name, "").strip().lower()
        if not value:
            continue
        if value == "grpc":
            return "grpc"
        if value == "http/protobuf":
            return "http/protobuf"
        raise TracingMisconfigured(f"{name}={value!r}: scfed exports grpc or http/protobuf")
    return "http/protobuf"


def tracing_on(mode: TracingMode, environ: Mapping[str, str]) -> bool:
    """Whether spans are made: "auto" is on when an OTLP endpoint is configured."""
    if mode == "auto":
        return otlp_endpoint(environ) is not None
    return mode == "on"


def sdk_provider(service: str, processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """A provider whose spans say they come from `service` (its resource's service.name, in
    the "scfed" namespace), handed to `processors`. OTEL_RESOURCE_ATTRIBUTES add to the
    resource, but OTEL_SERVICE_NAME does not rename the agency: five services often share one
    environment. Sampling follows OTEL_TRACES_SAMPLER (default: parent-based, always on)."""
    resource = Resource.create({SERVICE_NAME: service, SERVICE_NAMESPACE: "scfed"})
    provider = TracerProvider(resource=resource)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    """The OTLP exporter for the configured protocol; it reads its endpoint, headers,
    certificate and timeout from the standard variables itself."""
    if otlp_protocol(environ) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def provider_from_settings(
    service: str, mode: TracingMode, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """The provider a service's settings and environment call for: None with tracing off;
    with it on, one exporting in batches (a thread) to the OTLP endpoint, when one is
    configured, and exporting nothing otherwise."""
    environ = os.environ if environ is None else environ
    if not tracing_on(mode, environ):
        return None
    processors: list[SpanProcessor] = []
    if otlp_endpoint(environ) is not None:
        processors.append(BatchSpanProcessor(otlp_exporter(environ)))
    else:
        otlp_protocol(environ)  # still refuse a protocol it could not speak
    return sdk_provider(service, processors)


def tracer_of(provider: trace.TracerProvider | None) -> Tracer | None:
    """The runtime's tracer from `provider`; None with tracing off."""
    return None if provider is None else provider.get_tracer(TRACER_NAME)


def current_headers() -> tuple[str | None, str | None]:
    """The active span's W3C traceparent and tracestate (None without a valid span)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    state = carrier.get("tracestate")
    if state is not None and len(state) > MAX_TRACESTATE:
        state = None
    return carrier.get("traceparent"), state


def context_from(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """The context a stored traceparent names (an empty one for None or a malformed value)."""
    if not traceparent:
        return otel_context.Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _W3C.extract(carrier, context=otel_context.Context())


def metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying the active span's context to a peer."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return tuple(carrier.items())


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a traceparent, or None."""
    ids = ids_of(traceparent)
    return None if ids is None else ids[0]


def ids_of(traceparent: str | None) -> tuple[str, str] | None:
    """The trace id and span id a well-formed version-00 traceparent carries, or None."""
    match = _TRACEPARENT.fullmatch(traceparent or "")
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1), match.group(2)


def current_ids() -> tuple[str | None, str | None]:
    """The active span's trace id and span id in hex (None, None without a valid span)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def remote_parent(trace_id: str, span_id: str) -> otel_context.Context:
    """A context whose parent is the span `span_id` of trace `trace_id`, as stored earlier."""
    parent = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


def nanoseconds(at: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch, a span's time."""
    return int(at.timestamp() * 1_000_000_000)


def record_wait(
    tracer: Tracer,
    parent: otel_context.Context,
    created_at: datetime,
    attributes: Mapping[str, str | int],
) -> None:
    """The "outbox.wait" span: from the row's creation to now (never negative, should the
    writer's clock run ahead of this one's)."""
    now = time.time_ns()
    span = tracer.start_span(
        "outbox.wait",
        context=parent,
        start_time=min(nanoseconds(created_at), now),
        attributes=attributes,
    )
    span.end(end_time=now)


@contextlib.contextmanager
def continued(
    tracer: Tracer | None, name: str, ids: tuple[str, str] | None, attributes: Mapping[str, str]
) -> Iterator[None]:
    """A span `name` continuing the trace `ids` names (trace id, span id), linked to the span
    active here when that is another trace; under the active span when `ids` is None."""
    if tracer is None:
        yield
        return
    links: list[Link] = []
    parent: otel_context.Context | None = None
    if ids is not None:
        here = trace.get_current_span().get_span_context()
        parent = remote_parent(*ids)
        if here.is_valid and format(here.trace_id, "032x") != ids[0]:
            links.append(Link(here))
    with tracer.start_as_current_span(name, context=parent, links=links, attributes=attributes):
        yield
