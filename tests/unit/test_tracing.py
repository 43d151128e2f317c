"""The pure parts of tracing: when it is on, what it is configured by, and the W3C context
stored with an outbox row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from services.runtime import tracing
from services.runtime.config import ServiceSettings

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    ("mode", "environ", "on"),
    [
        ("off", ENDPOINT, False),
        ("on", {}, True),
        ("auto", {}, False),
        ("auto", ENDPOINT, True),
        ("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_tracing_is_on_when_asked_or_when_auto_finds_an_endpoint(
    mode: tracing.TracingMode, environ: dict[str, str], on: bool
) -> None:
    assert tracing.tracing_on(mode, environ) is on


def test_the_traces_endpoint_wins_over_the_general_one() -> None:
    both = {**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"}
    assert tracing.otlp_endpoint(both) == "http://t:4318/v1/traces"


def test_the_protocol_defaults_to_http_and_an_unknown_one_is_refused() -> None:
    assert tracing.otlp_protocol({}) == "http/protobuf"
    assert tracing.otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"}) == "grpc"
    traces_first = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert tracing.otlp_protocol(traces_first) == "http/protobuf"
    with pytest.raises(tracing.TracingMisconfigured, match="http/json"):
        tracing.otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    with pytest.raises(tracing.TracingMisconfigured):
        tracing.provider_from_settings("sib", "on", {"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"})


def test_off_makes_no_provider_and_on_without_endpoint_exports_nothing() -> None:
    assert tracing.provider_from_settings("sib", "off", ENDPOINT) is None
    assert tracing.provider_from_settings("sib", "auto", {}) is None
    assert tracing.tracer_of(None) is None
    quiet = tracing.provider_from_settings("lesc", "on", {})
    assert quiet is not None
    # No span processor: no exporter, no background thread.
    assert quiet._active_span_processor._span_processors == ()
    assert quiet.resource.attributes["service.name"] == "lesc"
    quiet.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_with_an_endpoint_spans_are_exported_in_batches(protocol: str) -> None:
    environ = {**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    provider = tracing.provider_from_settings("ident", "auto", environ)
    assert provider is not None
    (processor,) = provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    provider.shutdown()


def test_the_agency_names_the_service_whatever_otel_service_name_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "everyone")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = tracing.sdk_provider("ice_field")
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "ice_field"
    assert attributes["service.namespace"] == "scfed"
    assert attributes["deployment.environment"] == "test"


def test_the_setting_takes_any_case_and_refuses_other_values() -> None:
    assert ServiceSettings(tracing="ON").tracing == "on"
    assert ServiceSettings().tracing == "auto"
    with pytest.raises(ValidationError):
        ServiceSettings(tracing="sometimes")


@pytest.mark.parametrize(
    ("traceparent", "ids"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN)),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN)),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{SPAN}-01", None),
        ("00-abc-def-01", None),
        ("", None),
        (None, None),
    ],
)
def test_ids_are_read_from_a_well_formed_traceparent_only(
    traceparent: str | None, ids: tuple[str, str] | None
) -> None:
    assert tracing.ids_of(traceparent) == ids
    assert tracing.trace_id_of(traceparent) == (None if ids is None else ids[0])


def test_a_stored_context_is_restored_as_the_parent_it_was() -> None:
    provider = tracing.sdk_provider("sib")
    tracer = provider.get_tracer("test")
    assert tracing.current_headers() == (None, None)
    assert tracing.current_ids() == (None, None)
    with tracer.start_as_current_span("writer") as writer:
        traceparent, tracestate = tracing.current_headers()
        trace_id, span_id = tracing.current_ids()
    assert traceparent is not None and tracestate is None
    assert tracing.ids_of(traceparent) == (trace_id, span_id)
    assert span_id == format(writer.get_span_context().span_id, "016x")
    restored = trace.get_current_span(tracing.context_from(traceparent)).get_span_context()
    assert restored.is_remote and format(restored.trace_id, "032x") == trace_id
    assert tracing.context_from("garbage") == tracing.context_from(None)


def test_the_outbox_wait_runs_from_the_rows_creation_and_is_never_negative() -> None:
    spans = InMemorySpanExporter()
    tracer = tracing.sdk_provider("cjis_iafis", [SimpleSpanProcessor(spans)]).get_tracer("t")
    parent = tracing.remote_parent(TRACE, SPAN)
    created = datetime.now(UTC) - timedelta(seconds=2)
    tracing.record_wait(tracer, parent, created, {"scfed.tot": "IAQ"})
    # A row written by a replica whose clock runs ahead of this one's.
    tracing.record_wait(tracer, parent, datetime.now(UTC) + timedelta(hours=1), {})
    waited, ahead = spans.get_finished_spans()
    assert waited.name == "outbox.wait" and waited.parent is not None
    assert format(waited.parent.span_id, "016x") == SPAN
    assert waited.start_time == tracing.nanoseconds(created)
    assert waited.end_time is not None and waited.end_time - waited.start_time >= 2 * 10**9
    assert ahead.end_time is not None and ahead.start_time is not None
    assert ahead.end_time - ahead.start_time == 0


def test_a_continued_trace_links_the_request_that_resumed_it() -> None:
    spans = InMemorySpanExporter()
    tracer = tracing.sdk_provider("sib", [SimpleSpanProcessor(spans)]).get_tracer("t")
    with (
        tracer.start_as_current_span("POST /v1/release-notices") as request,
        tracing.continued(tracer, "sib.release_notice", (TRACE, SPAN), {"scfed.tcn": "T"}),
    ):
        assert tracing.current_ids()[0] == TRACE
    with tracing.continued(None, "nothing", (TRACE, SPAN), {}):
        assert tracing.current_ids() == (None, None)
    resumed = next(s for s in spans.get_finished_spans() if s.name == "sib.release_notice")
    assert resumed.parent is not None and format(resumed.parent.span_id, "016x") == SPAN
    assert [link.context for link in resumed.links] == [request.get_span_context()]
