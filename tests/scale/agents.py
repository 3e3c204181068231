"""Agents the scale tests build where they run (Ray actors, DBOS workers): importable factories."""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

from pydantic import BaseModel

from agentloop import OPENAI_PROFILE, Agent, OpenAICompatible, RateLimit, tool


class Extracted(BaseModel):
    id: str
    words: int


def fake_model(base_url: str) -> OpenAICompatible:
    return OpenAICompatible(
        "fake-model", base_url=base_url, api_key="sk-local-fake", profile=OPENAI_PROFILE
    )


def extraction_agent(base_url: str) -> Agent[Extracted]:
    """One request per document: the fake server answers with the JSON output at once."""
    return Agent(fake_model(base_url), instructions="Extract the document.", output_type=Extracted)


def prompt_of(row: dict[str, object]) -> str:
    return f"id={row['id']} {row['text']}"


def lookup_agent(
    base_url: str, tool_log: Path, *, needs_approval: bool = False
) -> Agent[Extracted]:
    """Two requests and one tool call per document; each tool call appends a line to `tool_log`.

    With `needs_approval`, the lookup waits for a decision (``approver="defer"``).
    """

    def lookup(doc_id: str) -> str:
        """Look a document up (a side effect: one line in the tool log).

        Args:
            doc_id: the document's key.
        """
        with tool_log.open("a", encoding="utf-8") as log:
            log.write(doc_id + "\n")
        return f"document {doc_id} found"

    return Agent(
        fake_model(base_url),
        instructions="Look the document up, then extract it.",
        tools=[tool(requires_approval=needs_approval)(lookup)],
        output_type=Extracted,
        approver="defer" if needs_approval else None,
    )


def traced_extraction_agent(base_url: str, traces_url: str) -> Agent[Extracted]:
    """`extraction_agent`, traced: built in each Ray actor, which instruments its own process and
    sends its spans over OTLP/HTTP to `traces_url` (a span at a time)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from agentloop.otel import instrument

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    instrument(provider)
    return extraction_agent(base_url)


def placed_extraction_agent(base_url: str, rate_limit: RateLimit | None = None) -> Agent[Extracted]:
    """`extraction_agent` built in a Ray actor, its requests saying where they come from (headers
    ``x-node``, the Ray node's id, and ``x-pid``); its model given `rate_limit`."""
    ray = importlib.import_module("ray")  # by name: the extra may be missing where lint runs
    where = {"x-node": ray.get_runtime_context().get_node_id(), "x-pid": str(os.getpid())}
    model = OpenAICompatible(
        "fake-model",
        base_url=base_url,
        api_key="sk-local-fake",
        profile=OPENAI_PROFILE,
        headers=where,
        rate_limit=rate_limit,
    )
    return Agent(model, instructions="Extract the document.", output_type=Extracted)


def costly_prompt_of(cpu_ms: float, row: dict[str, object]) -> str:
    """`prompt_of` after `cpu_ms` milliseconds of CPU work (parsing a document, say) on the
    caller's thread: the share of a run that more processes, not more concurrency, speed up."""
    end = time.thread_time() + cpu_ms / 1000
    while time.thread_time() < end:
        pass
    return prompt_of(row)
