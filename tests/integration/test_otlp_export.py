"""Spans reach an OTLP collector the standard variables name, over HTTP/protobuf and over gRPC:
a collector of our own on loopback, decoding what it receives with OpenTelemetry's own
protobuf messages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from services.runtime import tracing


class _Received:
    """What the collector was sent: one decoded export request per call."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    def spans(self) -> list[tuple[str, str]]:
        """(service.name, span name) of every span received."""
        out: list[tuple[str, str]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    out.extend((attributes.get("service.name", ""), s.name) for s in scope.spans)
        return out


@pytest.fixture
def http_collector() -> Iterator[tuple[str, _Received]]:
    """An OTLP/HTTP collector on a free loopback port; yields its base URL."""
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.requests.append(request)
            received.paths.append(self.path)
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, _Received]]:
    """An OTLP/gRPC collector on a free loopback port; yields its URL."""
    received = _Received()

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(
            self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
        ) -> trace_service_pb2.ExportTraceServiceResponse:
            received.requests.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


def _export_one_span(service: str) -> None:
    provider = tracing.provider_from_settings(service, "auto")
    assert provider is not None
    try:
        with provider.get_tracer("test").start_as_current_span("booking.accepted"):
            pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def test_the_general_endpoint_gets_spans_over_http_at_its_v1_traces_path(
    monkeypatch: pytest.MonkeyPatch, http_collector: tuple[str, _Received]
) -> None:
    url, received = http_collector
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    _export_one_span("sib")
    assert received.paths == ["/v1/traces"]
    assert received.spans() == [("sib", "booking.accepted")]


def test_the_traces_endpoint_is_used_as_given(
    monkeypatch: pytest.MonkeyPatch, http_collector: tuple[str, _Received]
) -> None:
    url, received = http_collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/collector/traces")
    _export_one_span("lesc")
    assert received.paths == ["/collector/traces"]
    assert received.spans() == [("lesc", "booking.accepted")]


def test_spans_go_over_grpc_when_the_protocol_says_so(
    monkeypatch: pytest.MonkeyPatch, grpc_collector: tuple[str, _Received]
) -> None:
    url, received = grpc_collector
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    _export_one_span("ident")
    assert received.spans() == [("ident", "booking.accepted")]
