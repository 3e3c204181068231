"""A picture of a real trace: one agent run on the local model, its spans drawn as a waterfall.

    python tools/trace_picture.py [--out docs/img/trace.svg] [--fake]

Runs a tool-calling agent on SmolLM2 served by llama.cpp (`--fake`: agentloop's fake server),
with `agentloop.otel.instrument()` and the SDK's in-memory exporter, and draws the finished spans
as an SVG: one bar per span, nested by parent, with its name, its duration and a few of its
attributes. Needs the otel extra and the SDK (both in the dev extra).
"""

from __future__ import annotations

import argparse
import contextlib
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentloop import Agent, ModelSettings, UsageLimitExceeded
from agentloop.otel import instrument

ROW, LEFT, WIDTH, LABEL = 46, 400, 520, 12
COLOURS = {"invoke_agent": "#4a7bd0", "chat": "#5cb85c", "execute_tool": "#f0ad4e"}
SHOWN = ("gen_ai.request.model", "gen_ai.tool.name", "gen_ai.usage.input_tokens",
         "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons", "error.type")  # fmt: skip


def weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name.
    """
    return f"{city}: 21 C, sunny"


def run(fake: bool) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    prompt = "What is the weather in Lisbon? Use the tool."
    with instrument(provider):
        if fake:
            from agentloop.testing import FakeServer, reply, tool_call

            script = [tool_call(("weather", {"city": "Lisbon"})), reply("Sunny, 21 C.")]
            with FakeServer(script, model_name="gpt-4o-mini") as server:
                Agent(server.model(), tools=[weather]).run_sync(prompt)
        else:
            from agentloop.local import LocalServer

            with LocalServer(n_ctx=4096) as server:
                agent = Agent(server.model(), name="forecaster", tools=[weather], max_turns=3,
                              settings=ModelSettings(temperature=0.0, seed=7))  # fmt: skip
                with contextlib.suppress(UsageLimitExceeded):  # a loop shows in the trace
                    agent.run_sync(prompt)
    return list(exporter.get_finished_spans())


def _ordered(spans: Sequence[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """(depth, span), parents before children, siblings by start time."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    out: list[tuple[int, ReadableSpan]] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            out.append((depth, span))
            walk(span.context.span_id if span.context is not None else None, depth + 1)

    walk(None, 0)
    return out


def svg(spans: Sequence[ReadableSpan]) -> str:
    rows = _ordered(spans)
    start = min(s.start_time or 0 for s in spans)
    end = max(s.end_time or 0 for s in spans)
    scale = WIDTH / max(end - start, 1)
    height = ROW * len(rows) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-weight="bold">trace: {(end - start) / 1e6:.1f} ms</text>',
    ]
    for index, (depth, span) in enumerate(rows):
        y = 34 + index * ROW
        x = LEFT + ((span.start_time or 0) - start) * scale
        width = max(((span.end_time or 0) - (span.start_time or 0)) * scale, 2)
        failed = span.status.status_code.name == "ERROR"
        operation = span.name.split(" ", 1)[0]
        colour = "#d9534f" if failed else COLOURS.get(operation, "#999")
        name = html.escape(span.name)
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        parts.append(f'<text x="{10 + depth * LABEL}" y="{y + 14}">{name} ({took:.1f} ms)</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="18" rx="3" '
                     f'fill="{colour}"/>')  # fmt: skip
        detail = html.escape(_detail(span.attributes or {}))
        parts.append(f'<text x="{10 + depth * LABEL}" y="{y + 32}" fill="#666" '
                     f'font-size="10">{detail}</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _detail(attributes: Any) -> str:
    found = []
    for key in SHOWN:
        if key in attributes:
            value = attributes[key]
            value = ",".join(value) if isinstance(value, tuple) else value
            found.append(f"{key.removeprefix('gen_ai.')}={value}")
    return "  ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/trace.svg"))
    parser.add_argument("--fake", action="store_true", help="the fake server, not the local model")
    args = parser.parse_args()
    spans = run(args.fake)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg(spans))
    print(f"{len(spans)} spans -> {args.out}")


if __name__ == "__main__":
    main()
