"""agentloop with OpenTelemetry on: `instrument()` with the SDK's providers, spans batched to an
exporter that drops them, metrics aggregated in memory (what an application pays before export)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentloop.otel import instrument

from .agentloop_ import Client as Plain


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Client(Plain):
    name = "agentloop (OpenTelemetry on)"

    async def open(self, base_url: str, connections: int) -> None:
        await super().open(base_url, connections)
        self.tracer_provider = TracerProvider()
        # a queue that a tight loop of runs does not overflow (an overflow logs every dropped span)
        processor = BatchSpanProcessor(_Drop(), max_queue_size=1 << 16)
        self.tracer_provider.add_span_processor(processor)
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        self.instrumentation: Any = instrument(self.tracer_provider, self.meter_provider)

    async def close(self) -> None:
        self.instrumentation.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        await super().close()
