"""The OpenTelemetry SDK's own floor: what one agent run's telemetry costs with no agentloop at all.

    tools/bench/.venv/bin/python tools/bench/otel_floor.py

A tool run in the GenAI conventions is 4 spans (invoke_agent, chat, execute_tool, chat) with the
attributes agentloop sets, and 6 histogram points (a duration and two token counts per request).
This makes exactly those with the SDK (spans batched to an exporter that drops them, metrics in
memory) and prints the CPU per run, for spans and metrics apart and together, so that
`agentloop_otel`'s overhead in the benchmark can be read against it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "bench-model",
    "server.address": "127.0.0.1",
    "server.port": 8000,
}
ANSWER = {
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.response.model": "bench-model",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 3,
}
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent"}
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add",
        "gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function"}  # fmt: skip


def main() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 16))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("floor")
    tracer = tracer_provider.get_tracer("floor")
    tokens = meter.create_histogram("tokens", explicit_bucket_boundaries_advisory=[1, 4, 16])
    duration = meter.create_histogram("duration", explicit_bucket_boundaries_advisory=[0.01])

    def chat(spans: bool, points: bool) -> None:
        if spans:
            with tracer.start_as_current_span("chat bench-model", kind=SpanKind.CLIENT,
                                              attributes=CHAT) as span:  # fmt: skip
                span.set_attributes(ANSWER)
                if points:
                    record()
        elif points:
            record()

    def record() -> None:
        measured: dict[str, Any] = {**CHAT, "gen_ai.response.model": "bench-model"}
        duration.record(0.001, measured)
        tokens.record(10, {**measured, "gen_ai.token.type": "input"})
        tokens.record(3, {**measured, "gen_ai.token.type": "output"})

    def run(spans: bool, points: bool) -> None:
        if not spans:
            chat(spans, points)
            chat(spans, points)
            return
        with tracer.start_as_current_span("invoke_agent agent", attributes=AGENT) as agent:
            chat(spans, points)
            with tracer.start_as_current_span("execute_tool add", attributes=TOOL):
                pass
            chat(spans, points)
            agent.set_attributes({"gen_ai.usage.input_tokens": 20, "agentloop.requests": 2})

    for label, spans, points in (("spans", True, False), ("metrics", False, True),
                                 ("spans and metrics", True, True)):  # fmt: skip
        for _ in range(500):
            run(spans, points)
        best = []
        for _ in range(5):
            started = time.process_time()
            for _ in range(2000):
                run(spans, points)
            best.append((time.process_time() - started) / 2000 * 1e6)
        print(f"{label}: {min(best):.1f} µs of CPU per run (best of 5)")
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
