"""agentloop's spans and metrics through the OTLP/HTTP exporters, to a receiver on 127.0.0.1, as
a collector would decode them from protobuf."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import agentloop
from agentloop import Agent, _telemetry, tool
from agentloop.otel import TOKEN_BUCKETS, instrument
from agentloop.testing import FakeServer, reply, tool_call


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 that keeps every POST body by path."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received[self.path].append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    running = Receiver()
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()
        running.thread.join(10)


def plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(plain(v) for v in value.array_value.values)
    return getattr(value, kind) if kind is not None else None


def decoded(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in attributes}


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_spans_and_metrics_arrive_over_otlp_http(receiver: Receiver) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.url("/v1/traces"), timeout=10))
    )
    metrics = OTLPMetricExporter(endpoint=receiver.url("/v1/metrics"), timeout=10)
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    script = [tool_call(("add", {"a": 2, "b": 3})), reply("5")]
    try:
        with instrument(tracer_provider, meter_provider):
            with FakeServer(script, model_name="gpt-4o-mini") as server:
                result = Agent(server.model(), tools=[add], name="calc").run_sync("2 + 3?")
        assert _telemetry.active is None
        assert tracer_provider.force_flush()
        assert meter_provider.force_flush()
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
    assert result.output == "5"

    # traces: one POST per span (the simple processor), all from the "agentloop" scope
    assert set(receiver.bodies) >= {"/v1/traces", "/v1/metrics"}
    spans: dict[str, list[Span]] = defaultdict(list)
    for body in receiver.bodies["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                assert scope.scope.name == "agentloop"
                assert scope.scope.version == agentloop.__version__
                for span in scope.spans:
                    spans[span.name].append(span)
    assert sorted((name, len(found)) for name, found in spans.items()) == [
        ("chat gpt-4o-mini", 2),
        ("execute_tool add", 1),
        ("invoke_agent calc", 1),
    ]
    [root] = spans["invoke_agent calc"]
    [call] = spans["execute_tool add"]
    chats = spans["chat gpt-4o-mini"]
    assert root.parent_span_id == b""
    for span in (call, *chats):
        assert span.parent_span_id == root.span_id and span.trace_id == root.trace_id
    assert all(chat.kind == Span.SpanKind.SPAN_KIND_CLIENT for chat in chats)
    assert call.kind == Span.SpanKind.SPAN_KIND_INTERNAL

    on_root = decoded(root.attributes)
    assert on_root["gen_ai.operation.name"] == "invoke_agent"
    assert on_root["gen_ai.agent.name"] == "calc"
    assert on_root["gen_ai.conversation.id"] == result.run_id
    assert on_root["agentloop.tool_calls"] == 1
    on_call = decoded(call.attributes)
    assert on_call["gen_ai.operation.name"] == "execute_tool"
    assert on_call["gen_ai.tool.name"] == "add"
    assert on_call["gen_ai.tool.call.id"] == "call_0_add"
    finishes = sorted(decoded(chat.attributes)["gen_ai.response.finish_reasons"] for chat in chats)
    assert finishes == [("stop",), ("tool_calls",)]
    for chat in chats:
        on_chat = decoded(chat.attributes)
        assert on_chat["gen_ai.operation.name"] == "chat"
        assert on_chat["gen_ai.request.model"] == "gpt-4o-mini"
        assert on_chat["server.port"] == 80 and on_chat["gen_ai.usage.input_tokens"] > 0

    # metrics: the token histogram, per token type, with the conventions' buckets
    tokens: dict[str, Any] = {}
    names: set[str] = set()
    for body in receiver.bodies["/v1/metrics"]:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "agentloop"
                for metric in scope.metrics:
                    names.add(metric.name)
                    if metric.name == "gen_ai.client.token.usage":
                        for point in metric.histogram.data_points:
                            kind = decoded(point.attributes)["gen_ai.token.type"]
                            tokens[kind] = point
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= names
    assert "agentloop.run.cost" in names  # gpt-4o-mini has a price
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].count == 2 and tokens["output"].count == 2
    assert tokens["input"].sum == result.usage.input_tokens
    assert tokens["output"].sum == result.usage.output_tokens
    assert tuple(tokens["input"].explicit_bounds) == TOKEN_BUCKETS
