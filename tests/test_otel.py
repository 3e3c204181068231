"""OpenTelemetry (`agentloop.otel`): the spans, events and metrics of runs, as the SDK's in-memory
exporter and reader receive them, on asyncio and trio.

Spans: ``invoke_agent {agent}`` over ``chat {model}`` and ``execute_tool {tool}``, with the GenAI
conventions' attributes; the rare events (retries, re-asks, handoffs, approvals) on the span they
belong to; content only when asked for, cut at its cap; never a key or a header. Metrics: token
usage, operation duration, time to the first chunk of a stream, the cost of a run.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from reliability.helpers import FaultServer, Sleeps
from support.conversations import fetch

import agentloop
from agentloop import (
    Agent,
    BadRequestError,
    InternalServerError,
    ModelSettings,
    OpenAICompatible,
    RunContext,
    ToolCall,
    TurnFinished,
    UsageError,
    UsageLimitExceeded,
    _telemetry,
    summarize_older,
    tool,
)
from agentloop._wire.retry import RetryPolicy
from agentloop.otel import DURATION_BUCKETS, TOKEN_BUCKETS, Instrumentation, instrument
from agentloop.testing import FakeServer, Reply, error, reply, tool_call

from faultserver import error as fault_error, ok, stream  # isort: skip

pytestmark = pytest.mark.anyio

KEY = "sk-fake-server"  # FakeServer's API key
MODEL = "gpt-4o-mini"  # in the price catalog: runs have a cost
CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)
TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
COST = "agentloop.run.cost"


# --- recording ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Otel:
    """The providers of one test, what they recorded, and the instrumentation in use."""

    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    instrumentation: Instrumentation

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=_start)

    def root(self) -> ReadableSpan:
        roots = [s for s in self.spans() if s.parent is None]
        assert len(roots) == 1, [s.name for s in roots]
        return roots[0]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def points(self, metric: str) -> list[HistogramDataPoint]:
        """The histogram points of `metric` (none when it was never recorded)."""
        found: list[HistogramDataPoint] = []
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for recorded in scope.metrics:
                    if recorded.name != metric:
                        continue
                    for point in recorded.data.data_points:
                        assert isinstance(point, HistogramDataPoint), point
                        found.append(point)
        return found


@pytest.fixture
def otel(request: pytest.FixtureRequest) -> Iterator[Otel]:
    """Instrumented for the test (options by indirect parametrization), and turned off after."""
    options: dict[str, Any] = getattr(request, "param", {})
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    assert _telemetry.active is None
    try:
        with instrument(tracer_provider, meter_provider, **options) as instrumentation:
            assert instrumentation.active and _telemetry.active is instrumentation._installed  # pyright: ignore[reportPrivateUsage]
            yield Otel(tracer_provider, exporter, reader, instrumentation)
        assert _telemetry.active is None
    finally:
        _telemetry.active = None  # never leak an instrumentation into the next test
        tracer_provider.shutdown()
        meter_provider.shutdown()


def capturing(**options: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("otel", [options], indirect=True, ids=["capture"])


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    parent_id = span_id(parent)
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent_id]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def events(span: ReadableSpan, prefix: str = "agentloop.") -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events if e.name.startswith(prefix)]


def everything_recorded(spans: Sequence[ReadableSpan]) -> str:
    """Every text a span carries: its name, attributes, events and status."""
    parts: list[str] = []
    for span in spans:
        parts += [span.name, repr(attrs(span)), str(span.status.description)]
        for event in span.events:
            parts += [event.name, repr(dict(event.attributes or {}))]
    return "\n".join(parts)


def usage(prompt: int, completion: int, **details: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        **details,
    }


def with_usage(answer: Reply, prompt: int, completion: int) -> Reply:
    return dataclasses.replace(answer, usage=usage(prompt, completion))


def cut(text: str, cap: int) -> str:
    return f"{text[:cap]}...[{len(text) - cap} more characters]"


# --- tools --------------------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def explode() -> str:
    """Always fails."""
    raise RuntimeError("boom in the tool")


@tool
def echo(text: str) -> str:
    """Echo a text twice."""
    return text * 2


@tool(requires_approval=True)
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


def calc_agent(server: FakeServer, **options: Any) -> Agent[Any]:
    return Agent(server.model(), tools=[add], name="calc", **options)


def tool_run_script() -> list[Reply]:
    return [
        with_usage(tool_call(("add", {"a": 2, "b": 3})), 20, 4),
        reply(
            "5",
            usage=usage(
                30,
                2,
                prompt_tokens_details={"cached_tokens": 8},
                completion_tokens_details={"reasoning_tokens": 1},
            ),
        ),
    ]


async def stream_to_end(agent: Agent[Any], prompt: str) -> Any:
    async with agent.run_stream(prompt) as stream:
        async for _ in stream:
            pass
    return stream.result


# --- 1. the tree and its attributes -------------------------------------------------------------


SETTINGS = ModelSettings(
    temperature=0.25,
    top_p=0.5,
    max_completion_tokens=300,
    frequency_penalty=0.125,
    presence_penalty=0.375,
    seed=7,
    stop=["END"],
)
SENT_SETTINGS = {
    "gen_ai.request.temperature": 0.25,
    "gen_ai.request.top_p": 0.5,
    "gen_ai.request.max_tokens": 300,
    "gen_ai.request.frequency_penalty": 0.125,
    "gen_ai.request.presence_penalty": 0.375,
    "gen_ai.request.seed": 7,
    "gen_ai.request.stop_sequences": ("END",),
}


async def test_a_tool_run_is_an_agent_span_over_chat_tool_chat(otel: Otel) -> None:
    with FakeServer(tool_run_script(), model_name=MODEL) as server:
        result = await calc_agent(server).run("2 + 3?", settings=SETTINGS)
    assert result.output == "5" and result.cost is not None
    assert server.requests[0]["seed"] == 7 and server.requests[0]["temperature"] == 0.25

    spans = otel.spans()
    root = otel.root()
    assert len(spans) == 4 and {trace_id(s) for s in spans} == {trace_id(root)}
    first, call, second = kids = children(spans, root)
    assert [s.name for s in kids] == ["chat gpt-4o-mini", "execute_tool add", "chat gpt-4o-mini"]
    assert all(not children(spans, s) for s in kids)
    assert (first.end_time or 0) <= (call.start_time or 0)  # one after the other
    assert (call.end_time or 0) <= (second.start_time or 0)

    assert root.name == "invoke_agent calc" and root.kind is SpanKind.INTERNAL
    assert attrs(root) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "calc",
        "gen_ai.provider.name": "openai-compatible",
        "gen_ai.request.model": MODEL,
        "gen_ai.conversation.id": result.run_id,
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 6,
        "agentloop.requests": 2,
        "agentloop.tool_calls": 1,
        "agentloop.cost_usd": result.cost,
    }

    sent = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai-compatible",
        "gen_ai.request.model": MODEL,
        "server.address": "fake.test",
        "server.port": 80,
        **SENT_SETTINGS,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.id": "chatcmpl-fake",
    }
    assert first.kind is SpanKind.CLIENT and second.kind is SpanKind.CLIENT
    assert attrs(first) == {
        **sent,
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 4,
    }
    assert attrs(second) == {
        **sent,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 30,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cache_read.input_tokens": 8,
        "gen_ai.usage.reasoning.output_tokens": 1,
    }

    assert call.kind is SpanKind.INTERNAL
    assert attrs(call) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.call.id": "call_0_add",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Add two numbers.",
    }
    for span in spans:
        assert span.status.status_code is StatusCode.UNSET
        assert span.events == ()  # nothing rare happened
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "agentloop"
        assert span.instrumentation_scope.version == agentloop.__version__


async def test_an_unnamed_agent_and_a_text_run_give_two_spans(otel: Otel) -> None:
    with FakeServer([reply("hello")]) as server:
        await Agent(server.model()).run("hi")
    root = otel.root()
    assert root.name == "invoke_agent agent"
    assert [s.name for s in children(otel.spans(), root)] == ["chat fake-model"]
    assert "agentloop.cost_usd" not in attrs(root)  # fake-model has no price
    assert otel.points(COST) == []


# --- 2. a tool's own spans ----------------------------------------------------------------------


def sync_lookup(tracer: trace.Tracer) -> Any:
    barrier = threading.Barrier(2, timeout=10)

    def lookup(key: str) -> str:
        """Look a key up."""
        with tracer.start_as_current_span(f"inner {key}"):
            barrier.wait()  # both calls are in their worker threads at once
        return key.upper()

    return lookup


def async_lookup(tracer: trace.Tracer) -> Any:
    both = anyio.Event()
    arrived: list[str] = []

    async def lookup(key: str) -> str:
        """Look a key up."""
        with tracer.start_as_current_span(f"inner {key}"):
            arrived.append(key)
            if len(arrived) == 2:
                both.set()
            with anyio.fail_after(10):
                await both.wait()  # both calls are running at once
        return key.upper()

    return lookup


@pytest.mark.parametrize("make", [sync_lookup, async_lookup], ids=["sync", "async"])
async def test_a_tools_own_spans_nest_under_its_execute_tool_span(otel: Otel, make: Any) -> None:
    tracer = trace.get_tracer("tool-code", tracer_provider=otel.tracer_provider)
    script = [tool_call(("lookup", {"key": "a"}), ("lookup", {"key": "b"})), reply("A and B")]
    with FakeServer(script) as server:
        result = await Agent(server.model(), tools=[make(tracer)]).run("look a and b up")
    assert result.output == "A and B"
    spans = otel.spans()
    root = otel.root()
    calls = {attrs(s)["gen_ai.tool.call.id"]: s for s in otel.named("execute_tool lookup")}
    assert set(calls) == {"call_0_lookup", "call_1_lookup"}
    assert all(s.parent is not None and s.parent.span_id == span_id(root) for s in calls.values())
    for key, call_id in (("a", "call_0_lookup"), ("b", "call_1_lookup")):
        [inner] = otel.named(f"inner {key}")
        assert inner.parent is not None
        assert inner.parent.span_id == span_id(calls[call_id])
        assert trace_id(inner) == trace_id(root)
        assert children(spans, calls[call_id]) == [inner]
        assert inner.instrumentation_scope is not None
        assert inner.instrumentation_scope.name == "tool-code"


# --- 3. an output re-ask ------------------------------------------------------------------------


class Total(BaseModel):
    total: int


async def test_an_invalid_structured_answer_is_re_asked_on_the_agent_span(otel: Otel) -> None:
    with FakeServer([reply({"total": "many"}), reply({"total": 5})], model_name=MODEL) as server:
        result = await Agent(server.model(), output_type=Total, name="counter").run("count")
    assert result.output == Total(total=5)
    root = otel.root()
    kids = children(otel.spans(), root)
    assert [s.name for s in kids] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert events(root) == [("agentloop.output_reask", {"retries": 1})]
    assert all(events(s) == [] for s in kids)
    assert attrs(root)["agentloop.requests"] == 2
    assert root.status.status_code is StatusCode.UNSET


# --- 4. a streamed run --------------------------------------------------------------------------


async def test_a_streamed_run_has_the_same_tree_and_a_time_to_first_chunk(otel: Otel) -> None:
    script = [tool_call(("add", {"a": 2, "b": 3})), reply("5")]
    with FakeServer(script, model_name=MODEL) as server:
        result = await stream_to_end(calc_agent(server), "2 + 3?")
    assert result.output == "5"
    assert all(body.get("stream") for body in server.requests)
    spans = otel.spans()
    root = otel.root()
    assert root.name == "invoke_agent calc"
    kids = children(spans, root)
    assert [(s.name, s.kind) for s in kids] == [
        ("chat gpt-4o-mini", SpanKind.CLIENT),
        ("execute_tool add", SpanKind.INTERNAL),
        ("chat gpt-4o-mini", SpanKind.CLIENT),
    ]
    assert len(spans) == 4
    assert attrs(root)["gen_ai.conversation.id"] == result.run_id
    for chat, finish in ((kids[0], "tool_calls"), (kids[2], "stop")):
        assert attrs(chat)["gen_ai.response.finish_reasons"] == (finish,)
        assert attrs(chat)["gen_ai.response.id"] == "chatcmpl-fake"
        assert attrs(chat)["gen_ai.usage.input_tokens"] > 0
    assert [s.status.status_code for s in spans] == [StatusCode.UNSET] * 4

    [first_chunk] = otel.points(FIRST_CHUNK)
    assert first_chunk.count == 2  # one per streamed request
    assert first_chunk.explicit_bounds == DURATION_BUCKETS
    [duration] = otel.points(DURATION)
    assert dict(first_chunk.attributes or {}) == dict(duration.attributes or {})
    assert 0 < first_chunk.sum <= duration.sum  # the first chunk comes before the end


async def test_a_request_that_is_not_streamed_has_no_time_to_first_chunk(otel: Otel) -> None:
    with FakeServer([reply("hello")]) as server:
        await Agent(server.model()).run("hi")
    assert otel.points(FIRST_CHUNK) == []
    [duration] = otel.points(DURATION)
    assert duration.count == 1


# --- 5. failed runs -----------------------------------------------------------------------------


async def test_an_error_answer_fails_the_chat_and_agent_spans(otel: Otel) -> None:
    with FakeServer([error(400, "unsupported parameter")]) as server:
        with pytest.raises(BadRequestError) as failed:
            await Agent(server.model(), name="calc").run("hi")
    root = otel.root()
    [chat] = children(otel.spans(), root)
    assert chat.name == "chat fake-model"
    for span in (chat, root):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.status.description or "").startswith("BadRequestError: ")
        assert "unsupported parameter" in (span.status.description or "")
        assert attrs(span)["error.type"] == "BadRequestError"
        [exception] = [e for e in span.events if e.name == "exception"]
        assert "unsupported parameter" in str((exception.attributes or {})["exception.message"])
    assert failed.value.usage is not None
    assert attrs(root)["agentloop.requests"] == failed.value.usage.requests == 0  # none answered
    [duration] = otel.points(DURATION)
    assert dict(duration.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai-compatible",
        "gen_ai.request.model": "fake-model",
        "server.address": "fake.test",
        "server.port": 80,
        "error.type": "BadRequestError",
    }
    assert duration.count == 1
    assert otel.points(TOKENS) == []


async def test_a_usage_limit_fails_the_agent_span_only(otel: Otel) -> None:
    with FakeServer([tool_call(("add", {"a": 1, "b": 1}))]) as server:
        with pytest.raises(UsageLimitExceeded):
            await calc_agent(server, max_turns=1).run("1 + 1?")
    root = otel.root()
    kids = children(otel.spans(), root)
    assert [s.name for s in kids] == ["chat fake-model", "execute_tool add"]
    assert [s.status.status_code for s in kids] == [StatusCode.UNSET] * 2
    assert root.status.status_code is StatusCode.ERROR
    assert attrs(root)["error.type"] == "UsageLimitExceeded"
    assert attrs(root)["agentloop.requests"] == 1
    [duration] = otel.points(DURATION)
    assert "error.type" not in dict(duration.attributes or {})


# --- 6. a tool that raises ----------------------------------------------------------------------


async def test_a_failing_tool_fails_its_span_and_the_run_goes_on(otel: Otel) -> None:
    with FakeServer([tool_call(("explode", {})), reply("it failed")]) as server:
        result = await Agent(server.model(), tools=[explode]).run("go")
    assert result.output == "it failed"
    root = otel.root()
    [call] = otel.named("execute_tool explode")
    assert call.status.status_code is StatusCode.ERROR
    assert "boom in the tool" in (call.status.description or "")
    assert attrs(call)["error.type"] == "tool_error"
    assert root.status.status_code is StatusCode.UNSET and "error.type" not in attrs(root)
    assert [s.status.status_code for s in otel.named("chat fake-model")] == [StatusCode.UNSET] * 2


# --- 7. HTTP retries ----------------------------------------------------------------------------


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def fault_model(server: FaultServer, sleeps: Sleeps) -> OpenAICompatible:
    policy = RetryPolicy(max_retries=2, sleep=sleeps)
    return OpenAICompatible("m", base_url=server.base_url, api_key=KEY, retry=policy, timeout=5)


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
async def test_a_retried_request_is_one_chat_span_with_a_retry_event(
    otel: Otel, fault_server: FaultServer, streaming: bool
) -> None:
    fault_server.script(fault_error(500, "try again"), stream("fine") if streaming else ok("fine"))
    sleeps = Sleeps()
    model = fault_model(fault_server, sleeps)
    try:
        agent = Agent(model)
        result = await (stream_to_end(agent, "hi") if streaming else agent.run("hi"))
    finally:
        await model.aclose()
    assert result.output == "fine" and len(fault_server.requests) == 2
    assert fault_server.requests[1].streaming is streaming
    [delay] = sleeps.calls
    root = otel.root()
    [chat] = children(otel.spans(), root)
    assert chat.name == "chat m" and chat.status.status_code is StatusCode.UNSET
    assert events(chat) == [
        ("agentloop.request_retry", {"attempt": 1, "error": "InternalServerError", "delay": delay})
    ]
    assert events(root) == []
    found = attrs(chat)
    assert found["agentloop.retries"] == 1
    assert (found["server.address"], found["server.port"]) == ("127.0.0.1", fault_server.port)
    assert found["gen_ai.response.id"] == ("chatcmpl-s" if streaming else "chatcmpl-fault")
    assert KEY not in everything_recorded(otel.spans())


async def test_a_request_that_fails_after_its_retries_is_one_failed_chat_span(
    otel: Otel, fault_server: FaultServer
) -> None:
    fault_server.script(*[fault_error(503, "down")] * 3)
    sleeps = Sleeps()
    model = fault_model(fault_server, sleeps)
    try:
        with pytest.raises(InternalServerError):
            await Agent(model).run("hi")
    finally:
        await model.aclose()
    [chat] = otel.named("chat m")
    retries = events(chat)
    assert [(name, e["attempt"]) for name, e in retries] == [
        ("agentloop.request_retry", 1),
        ("agentloop.request_retry", 2),
    ]
    assert [e["delay"] for _, e in retries] == sleeps.calls
    assert chat.status.status_code is StatusCode.ERROR
    assert attrs(chat)["error.type"] == "InternalServerError"
    assert otel.root().status.status_code is StatusCode.ERROR


# --- 8. handoffs and approvals ------------------------------------------------------------------


async def test_a_handoff_is_an_event_on_the_agent_span(otel: Otel) -> None:
    billing_server = FakeServer([reply("refunded")], model_name="billing-model")
    triage_server = FakeServer([tool_call(("transfer_to_billing", {}))], model_name="triage-model")
    billing = Agent(billing_server.model(), name="billing")
    triage = Agent(triage_server.model(), name="triage", handoffs=[billing])
    with billing_server, triage_server:
        result = await triage.run("refund A17")
    assert result.output == "refunded"
    root = otel.root()
    assert root.name == "invoke_agent triage"
    kids = children(otel.spans(), root)
    assert [s.name for s in kids] == [
        "chat triage-model",
        "execute_tool transfer_to_billing",
        "chat billing-model",
    ]
    assert events(root) == [("agentloop.handoff", {"from": "triage", "to": "billing"})]
    assert attrs(root)["agentloop.answered_by"] == "billing"
    assert attrs(root)["gen_ai.agent.name"] == "triage"
    assert attrs(kids[2])["gen_ai.request.model"] == "billing-model"


async def test_a_refusing_approver_is_an_event_on_the_tool_span(otel: Otel) -> None:
    def never(call: ToolCall, ctx: RunContext[Any]) -> bool:
        return False

    with FakeServer([tool_call(("refund", {"order": "A1"})), reply("not refunded")]) as server:
        result = await Agent(server.model(), tools=[refund], approver=never).run("refund A1")
    assert result.output == "not refunded"
    [call] = otel.named("execute_tool refund")
    assert events(call) == [("agentloop.approval", {"approved": False})]
    assert call.status.status_code is StatusCode.ERROR  # the call was answered as not run
    assert events(otel.root()) == []


async def test_an_async_approver_that_approves_is_an_event_on_the_tool_span(otel: Otel) -> None:
    async def always(call: ToolCall, ctx: RunContext[Any]) -> bool:
        await anyio.lowlevel.checkpoint()
        return True

    with FakeServer([tool_call(("refund", {"order": "A1"})), reply("refunded")]) as server:
        await Agent(server.model(), tools=[refund], approver=always).run("refund A1")
    [call] = otel.named("execute_tool refund")
    assert events(call) == [("agentloop.approval", {"approved": True})]
    assert call.status.status_code is StatusCode.UNSET


async def test_deferred_approvals_are_an_event_on_the_agent_span(otel: Otel) -> None:
    with FakeServer([tool_call(("refund", {"order": "A1"}), ("add", {"a": 1, "b": 2}))]) as server:
        agent = Agent(server.model(), tools=[refund, add], approver="defer")
        paused = await agent.run("refund A1")
    assert len(paused.pending_approvals) == 1
    root = otel.root()
    assert [s.name for s in children(otel.spans(), root)] == ["chat fake-model"]  # no tool ran
    assert events(root) == [("agentloop.approvals_pending", {"count": 1})]
    assert root.status.status_code is StatusCode.UNSET
    assert attrs(root)["gen_ai.conversation.id"] == paused.run_id

    otel.exporter.clear()
    with FakeServer([reply("refunded")]) as server:
        agent = Agent(server.model(), tools=[refund, add], approver="defer")
        resumed = await agent.resume(paused.state_json(), {paused.pending_approvals[0].id: True})
    assert resumed.output == "refunded"
    root = otel.root()
    assert attrs(root)["gen_ai.conversation.id"] == paused.run_id  # the run goes on
    kids = children(otel.spans(), root)
    assert sorted(s.name for s in kids[:2]) == ["execute_tool add", "execute_tool refund"]
    assert kids[2].name == "chat fake-model"  # after both calls (they run at once)
    [refunding] = otel.named("execute_tool refund")
    assert events(refunding) == [("agentloop.approval", {"approved": True})]
    assert events(otel.named("execute_tool add")[0]) == []
    assert events(root) == []


# --- 9. content ---------------------------------------------------------------------------------


def content_script() -> list[Reply]:
    return [tool_call(("echo", {"text": "A" * 50})), reply("R" * 45)]


async def content_run() -> Any:
    with FakeServer(content_script()) as server:
        agent = Agent(server.model(), tools=[echo], instructions="S" * 60)
        return await agent.run("P" * 100)


async def test_no_content_is_recorded_unless_asked_for(otel: Otel) -> None:
    await content_run()
    spans = otel.spans()
    assert len(spans) == 4
    for span in spans:
        assert not set(attrs(span)) & set(CONTENT_KEYS), span.name
    recorded = everything_recorded(spans)
    for text in ("A" * 20, "P" * 20, "R" * 20, "S" * 20):
        assert text not in recorded


@capturing(capture_content=True, max_content_chars=40)
async def test_content_is_recorded_in_the_conventions_format_and_cut(otel: Otel) -> None:
    await content_run()
    first, second = otel.named("chat fake-model")
    [call] = otel.named("execute_tool echo")
    arguments = json.dumps({"text": "A" * 50})
    system = [{"type": "text", "content": cut("S" * 60, 40)}]
    user = {"role": "user", "parts": [{"type": "text", "content": cut("P" * 100, 40)}]}
    calling = {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_0_echo",
                "name": "echo",
                "arguments": cut(arguments, 40),
            }
        ],
    }
    answer = {
        "role": "tool",
        "parts": [
            {"type": "tool_call_response", "id": "call_0_echo", "response": cut("A" * 100, 40)}
        ],
    }
    one, two = attrs(first), attrs(second)
    assert json.loads(one["gen_ai.system_instructions"]) == system
    assert json.loads(two["gen_ai.system_instructions"]) == system
    assert json.loads(one["gen_ai.input.messages"]) == [user]
    assert json.loads(one["gen_ai.output.messages"]) == [{**calling, "finish_reason": "tool_call"}]
    assert json.loads(two["gen_ai.input.messages"]) == [user, calling, answer]
    assert json.loads(two["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": cut("R" * 45, 40)}],
            "finish_reason": "stop",
        }
    ]
    assert attrs(call)["gen_ai.tool.call.arguments"] == cut(arguments, 40)
    assert attrs(call)["gen_ai.tool.call.result"] == cut("A" * 100, 40)
    assert not set(attrs(otel.root())) & set(CONTENT_KEYS)  # the agent span holds no content


@capturing(capture_content=True)
async def test_content_under_the_cap_is_whole(otel: Otel) -> None:
    await content_run()
    first, _ = otel.named("chat fake-model")
    [call] = otel.named("execute_tool echo")
    assert json.loads(attrs(first)["gen_ai.input.messages"])[0]["parts"][0]["content"] == "P" * 100
    assert attrs(call)["gen_ai.tool.call.result"] == "A" * 100
    assert "more characters" not in everything_recorded(otel.spans())


@pytest.mark.parametrize(
    "otel",
    [{"capture_content": False}, {"capture_content": True}],
    indirect=True,
    ids=["off", "on"],
)
async def test_no_key_and_no_header_is_ever_recorded(otel: Otel) -> None:
    await content_run()
    echoing = error(401, f"Incorrect API key provided: {KEY}.", headers={"x-echo": f"Bearer {KEY}"})
    with FakeServer([echoing]) as server, pytest.raises(agentloop.AuthenticationError):
        await Agent(server.model()).run("hi")
    spans = otel.spans()
    assert len(spans) == 6 and [s for s in spans if s.status.status_code is StatusCode.ERROR]
    recorded = everything_recorded(spans)
    assert KEY not in recorded
    assert "authorization" not in recorded.lower()
    assert "Incorrect API key provided" in recorded  # the error was recorded, scrubbed


@capturing(capture_content=True, max_content_chars=64)
async def test_an_inline_image_is_named_not_copied(otel: Otel) -> None:
    url = "data:image/png;base64," + "iVBORw0KGgo" * 40
    prompt = [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    with FakeServer([reply("a cat")], model_name=MODEL) as server:
        await Agent(server.model()).run(prompt)
    assert url in json.dumps(server.requests[0])  # the model got the image
    [chat] = otel.named("chat gpt-4o-mini")
    [user] = json.loads(attrs(chat)["gen_ai.input.messages"])
    assert user == {
        "role": "user",
        "parts": [
            {"type": "text", "content": "What is in the picture?"},
            {"type": "text", "content": f"[image image/png, {len(url):,} characters]"},
        ],
    }
    assert "iVBORw0KGgo" not in everything_recorded(otel.spans())


# --- 10. metrics --------------------------------------------------------------------------------


async def test_token_usage_duration_and_cost_metrics(otel: Otel) -> None:
    with FakeServer(tool_run_script(), model_name=MODEL) as server:
        result = await calc_agent(server).run("2 + 3?")
    measured = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai-compatible",
        "gen_ai.request.model": MODEL,
        "server.address": "fake.test",
        "server.port": 80,
        "gen_ai.response.model": MODEL,
    }
    tokens = {dict(p.attributes or {}).get("gen_ai.token.type"): p for p in otel.points(TOKENS)}
    assert set(tokens) == {"input", "output"}
    assert dict(tokens["input"].attributes or {}) == {**measured, "gen_ai.token.type": "input"}
    assert dict(tokens["output"].attributes or {}) == {**measured, "gen_ai.token.type": "output"}
    assert (tokens["input"].count, tokens["input"].sum) == (2, 50)
    assert (tokens["output"].count, tokens["output"].sum) == (2, 6)
    assert all(p.explicit_bounds == TOKEN_BUCKETS for p in tokens.values())

    [duration] = otel.points(DURATION)
    assert dict(duration.attributes or {}) == measured
    assert duration.count == 2 and duration.sum > 0
    assert duration.explicit_bounds == DURATION_BUCKETS

    [cost] = otel.points(COST)
    assert result.cost is not None and result.cost > 0
    assert cost.count == 1 and cost.sum == pytest.approx(result.cost)
    assert dict(cost.attributes or {}) == {"gen_ai.agent.name": "calc"}


async def test_a_request_without_reported_usage_records_no_tokens(otel: Otel) -> None:
    with FakeServer([reply("hi", report_usage=False)], model_name=MODEL) as server:
        result = await Agent(server.model()).run("hi")
    assert result.usage.unreported_requests == 1
    assert otel.points(TOKENS) == []
    [duration] = otel.points(DURATION)
    assert duration.count == 1
    assert "agentloop.cost_usd" not in attrs(otel.root())
    assert otel.points(COST) == []


async def test_a_request_without_reported_usage_has_no_token_attributes(otel: Otel) -> None:
    with FakeServer([reply("hi", report_usage=False)]) as server:
        await Agent(server.model()).run("hi")
    [chat] = otel.named("chat fake-model")
    assert "gen_ai.usage.input_tokens" not in attrs(chat)  # unknown, not zero
    assert "gen_ai.usage.output_tokens" not in attrs(chat)


# --- more of the tree: sub-agents, cancellation, requests of the history policy ------------------


async def test_an_agent_used_as_a_tool_nests_its_run_under_the_tool_span(otel: Otel) -> None:
    inner_server = FakeServer([reply("inner answer")], model_name="inner-model")
    outer_server = FakeServer(
        [tool_call(("helper", {"prompt": "q"})), reply("outer answer")], model_name="outer-model"
    )
    inner = Agent(inner_server.model(), name="helper")
    outer = Agent(outer_server.model(), name="outer", tools=[inner.as_tool()])
    with inner_server, outer_server:
        result = await outer.run("go")
    assert result.output == "outer answer"
    spans = otel.spans()
    root = otel.root()
    assert root.name == "invoke_agent outer"
    kids = children(spans, root)
    assert [s.name for s in kids] == ["chat outer-model", "execute_tool helper", "chat outer-model"]
    [sub] = children(spans, kids[1])
    assert sub.name == "invoke_agent helper"
    assert [s.name for s in children(spans, sub)] == ["chat inner-model"]
    assert attrs(sub)["gen_ai.agent.name"] == "helper"
    assert attrs(root)["gen_ai.conversation.id"] == result.run_id
    assert len(spans) == 6


async def test_a_cancelled_run_ends_its_spans_and_leaves_no_span_current(otel: Otel) -> None:
    with anyio.CancelScope() as scope:

        async def stop() -> str:
            """Stop the run."""
            scope.cancel()  # the run is cancelled while this tool runs
            await anyio.sleep_forever()
            return "never"

        with FakeServer([tool_call(("stop", {}))]) as server:
            await Agent(server.model(), tools=[stop]).run("go")
    assert scope.cancelled_caught
    assert trace.get_current_span() is trace.INVALID_SPAN  # the run's context was detached
    root = otel.root()
    kids = children(otel.spans(), root)
    assert [s.name for s in kids] == ["chat fake-model", "execute_tool stop"]  # all ended
    assert all(s.end_time is not None for s in (root, *kids))


async def test_a_stream_left_early_ends_its_spans(otel: Otel) -> None:
    started = anyio.Event()

    async def wait() -> str:
        """Wait forever."""
        started.set()
        await anyio.sleep_forever()
        return "never"

    with FakeServer([tool_call(("wait", {}))]) as server:
        async with Agent(server.model(), tools=[wait]).run_stream("go") as stream:
            async for event in stream:
                if isinstance(event, TurnFinished):
                    await started.wait()
                    break
    root = otel.root()
    kids = children(otel.spans(), root)
    assert [s.name for s in kids] == ["chat fake-model", "execute_tool wait"]
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_every_request_of_a_run_is_a_chat_span(otel: Otel) -> None:
    script: list[Any] = [tool_call(("fetch", {"page": i})) for i in range(14)]

    def next_item(body: dict[str, Any]) -> Reply:
        if "tools" not in body:  # the history policy's summary request
            return reply("Pages 0-4 were lorem ipsum.")
        return script.pop(0) if script else reply("done")

    with FakeServer([next_item] * 20, model_name="gpt-3.5-turbo-0613") as server:
        policy = summarize_older(max_summary_tokens=200, fill=0.5)
        agent = Agent(server.model(), tools=[fetch], instructions="Read.", history_policy=policy)
        result = await agent.run("Read pages 0 to 13.")
        server.script.clear()
    assert any("tools" not in body for body in server.requests)  # a summary was asked for
    assert result.usage.requests == len(server.requests)
    assert attrs(otel.root())["agentloop.requests"] == len(server.requests)
    assert len(otel.named("chat gpt-3.5-turbo-0613")) == len(server.requests)


# --- 11. turning it off, and not importing it ---------------------------------------------------


async def test_after_uninstrument_a_run_makes_no_spans(otel: Otel) -> None:
    with FakeServer([reply("one"), reply("two")]) as server:
        agent = Agent(server.model())
        await agent.run("hi")
        assert len(otel.spans()) == 2
        otel.instrumentation.uninstrument()
        assert not otel.instrumentation.active and _telemetry.active is None
        await agent.run("hi")
    assert len(otel.spans()) == 2
    [duration] = otel.points(DURATION)
    assert duration.count == 1


async def test_a_second_instrument_replaces_the_first(otel: Otel) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    second = instrument(provider, MeterProvider())
    try:
        assert second.active and not otel.instrumentation.active
        otel.instrumentation.uninstrument()  # no longer in use: leaves the second one on
        assert second.active
        with FakeServer([reply("hi")]) as server:
            await Agent(server.model()).run("hi")
    finally:
        second.uninstrument()
    assert otel.spans() == []
    assert [s.name for s in exporter.get_finished_spans()] == [
        "chat fake-model",
        "invoke_agent agent",
    ]
    provider.shutdown()


def test_max_content_chars_must_be_positive() -> None:
    with pytest.raises(UsageError, match="max_content_chars"):
        instrument(TracerProvider(), MeterProvider(), max_content_chars=0)
    assert _telemetry.active is None


def test_a_run_without_instrument_never_imports_opentelemetry() -> None:
    code = textwrap.dedent(
        """
        import sys
        import agentloop
        from agentloop.testing import FakeServer, reply, tool_call

        def add(a: int, b: int) -> int:
            "Add two numbers."
            return a + b

        with FakeServer([tool_call(("add", {"a": 1, "b": 2})), reply("3")]) as server:
            result = agentloop.Agent(server.model(), tools=[add]).run_sync("1 + 2?")
        assert result.output == "3", result.output
        print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
        """
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- batches ------------------------------------------------------------------------------------


async def test_a_batch_is_a_span_with_one_span_per_item_and_its_runs_under_it(otel: Otel) -> None:
    from agentloop.batch import run_batch

    script = [reply("A"), error(400, "bad item"), reply("C")]
    with FakeServer(script, model_name=MODEL) as server:
        agent = Agent(server.model(), name="extractor")
        summary = await run_batch(agent, ["a", "b", "c"], concurrency=1, retries=0, progress=False)
    assert (summary.succeeded, summary.failed) == (2, 1)
    [batch] = otel.named("agentloop.batch extractor")
    assert batch.parent is None and attrs(batch) == {"gen_ai.agent.name": "extractor"}
    items = otel.named("agentloop.batch.item")
    assert [attrs(i)["agentloop.batch.key"] for i in items] == ["0", "1", "2"]
    assert all(item.parent is not None and item.parent.span_id == span_id(batch) for item in items)
    runs = otel.named("invoke_agent extractor")
    assert [r.parent.span_id if r.parent else None for r in runs] == [span_id(i) for i in items]
    assert [events(i) for i in items] == [
        [],
        [("agentloop.batch.item_failed", {"error.type": "BadRequestError"})],
        [],
    ]
    assert runs[1].status.status_code is StatusCode.ERROR


async def test_a_durable_run_and_its_replay_make_the_same_spans(otel: Otel) -> None:
    from test_durable import MemoryEngine

    from agentloop._durable import durable_agent

    engine = MemoryEngine()
    with FakeServer(tool_run_script(), model_name=MODEL) as server:
        await durable_agent(calc_agent(server), engine).run("2+3?")
    first = [(s.name, attrs(s).get("gen_ai.usage.output_tokens")) for s in otel.spans()]
    otel.exporter.clear()
    with FakeServer([], model_name=MODEL) as idle:  # the replay asks the server nothing
        await durable_agent(calc_agent(idle), MemoryEngine(replay=engine.records)).run("2+3?")
    again = [(s.name, attrs(s).get("gen_ai.usage.output_tokens")) for s in otel.spans()]
    assert again == first
    assert [name for name, _ in first] == [
        "invoke_agent calc",
        "chat gpt-4o-mini",
        "execute_tool add",
        "chat gpt-4o-mini",
    ]
