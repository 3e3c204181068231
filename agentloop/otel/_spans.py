"""`OTelTelemetry`: agentloop's stages as OpenTelemetry spans and metrics (GenAI conventions).

Spans: ``invoke_agent {agent}`` for a run, parent of ``chat {model}`` for each model request and
``execute_tool {tool}`` for each tool call (current while the tool runs, so that its own spans
nest under it). Attribute names come from the ``opentelemetry-semantic-conventions`` package.
Metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` with the
conventions' bucket advice, ``gen_ai.client.operation.time_to_first_chunk`` for streamed
requests, and ``agentloop.run.cost`` (USD per run, when the cost is known).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.semconv._incubating.attributes import (  # pyright: ignore[reportMissingTypeStubs]
    gen_ai_attributes as ga,
)
from opentelemetry.semconv._incubating.metrics import (  # pyright: ignore[reportMissingTypeStubs]
    gen_ai_metrics as gm,
)
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._telemetry import Attributes
from . import _content

if TYPE_CHECKING:
    from .._loop.plan import RunPlan
    from .._loop.state import RunState
    from .._messages import ModelRequest, ModelResponse, ToolCall, ToolMessage
    from .._tools import Tool
    from .._wire.models import Model

__all__ = ["COST_BUCKETS", "DURATION_BUCKETS", "TOKEN_BUCKETS", "OTelTelemetry"]

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip
COST_BUCKETS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""USD per run: from a tenth of a cent (a small model's short run) to ten dollars."""
_SETTINGS = {  # ModelSettings field -> the conventions' request attribute
    "temperature": ga.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": ga.GEN_AI_REQUEST_TOP_P,
    "max_completion_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "frequency_penalty": ga.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": ga.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": ga.GEN_AI_REQUEST_SEED,
}


class OTelTelemetry:
    """Implements `agentloop._telemetry.Telemetry` with a tracer and a meter."""

    def __init__(
        self, tracer: trace.Tracer, meter: metrics.Meter, *, capture_content: bool, cap: int
    ) -> None:
        self._tracer = tracer
        self.capture_content = capture_content
        self.cap = cap
        self._tokens = meter.create_histogram(
            gm.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            gm.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the request to the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_histogram(
            "agentloop.run.cost",
            unit="USD",
            description="The cost of a run, in US dollars.",
            explicit_bucket_boundaries_advisory=COST_BUCKETS,
        )

    def run(self, plan: RunPlan, state: RunState) -> _RunScope:
        model = plan.model
        attributes: dict[str, Any] = {
            ga.GEN_AI_OPERATION_NAME: "invoke_agent",
            ga.GEN_AI_AGENT_NAME: plan.agent_name,
            ga.GEN_AI_PROVIDER_NAME: model.system,
            ga.GEN_AI_REQUEST_MODEL: model.name,
        }
        name = f"invoke_agent {plan.agent_name}"
        return _RunScope(self, self._span(name, SpanKind.INTERNAL, attributes), state, plan)

    def run_totals(self, span: trace.Span, state: RunState, first_agent: str) -> None:
        """What the run added up to, on its span (a resumed run's id is known only now)."""
        usage = state.usage
        totals: dict[str, Any] = {
            ga.GEN_AI_CONVERSATION_ID: state.run_id,
            ga.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
            ga.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            "agentloop.requests": usage.requests,
            "agentloop.tool_calls": usage.tool_calls,
        }
        if state.agent_name != first_agent:  # handed over: who answered in the end
            totals["agentloop.answered_by"] = state.agent_name
        cost = state.meter.total
        if cost is not None:
            totals["agentloop.cost_usd"] = cost
            self._cost.record(cost, {ga.GEN_AI_AGENT_NAME: first_agent})
        span.set_attributes(totals)

    async def chat(
        self,
        model: Model,
        request: ModelRequest,
        send: Awaitable[ModelResponse],
        streamed: bool,
    ) -> ModelResponse:
        attributes = _chat_attributes(model, request)
        if self.capture_content:
            self._capture_input(attributes, request)
        started = time.perf_counter()
        with self._span(f"chat {model.name}", SpanKind.CLIENT, attributes) as span:
            try:
                response = await send
            except Exception as exc:
                _failed(span, exc)
                errored = {
                    **_metric_attributes(attributes),
                    error_attributes.ERROR_TYPE: _kind(exc),
                }
                self._duration.record(time.perf_counter() - started, errored)
                raise
            elapsed = time.perf_counter() - started
            self._response(span, response, attributes, elapsed, streamed)
        return response

    def _capture_input(self, attributes: dict[str, Any], request: ModelRequest) -> None:
        system = _content.system_instructions(request.messages, self.cap)
        if system is not None:
            attributes[ga.GEN_AI_SYSTEM_INSTRUCTIONS] = system
        attributes[ga.GEN_AI_INPUT_MESSAGES] = _content.input_messages(request.messages, self.cap)

    def _response(
        self,
        span: trace.Span,
        response: ModelResponse,
        sent: dict[str, Any],
        elapsed: float,
        streamed: bool,
    ) -> None:
        usage = response.usage
        found: dict[str, Any] = {
            ga.GEN_AI_RESPONSE_FINISH_REASONS: [response.raw_finish_reason or "unknown"],
        }
        if usage.reported:  # zeros of a server that did not say are unknown, not free
            found[ga.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            found[ga.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        if response.model:
            found[ga.GEN_AI_RESPONSE_MODEL] = response.model
        if response.id:
            found[ga.GEN_AI_RESPONSE_ID] = response.id
        if usage.cached_tokens:
            found[ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_tokens
        if usage.reasoning_tokens:
            found[ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
        if response.retries:
            found["agentloop.retries"] = response.retries
        if self.capture_content:
            message, reason = response.message, response.finish_reason
            found[ga.GEN_AI_OUTPUT_MESSAGES] = _content.output_messages(message, reason, self.cap)
        span.set_attributes(found)
        measured = _metric_attributes(sent)
        if response.model:
            measured[ga.GEN_AI_RESPONSE_MODEL] = response.model
        self._duration.record(elapsed, measured)
        if usage.reported:
            self._tokens.record(usage.input_tokens, {**measured, ga.GEN_AI_TOKEN_TYPE: "input"})
            self._tokens.record(usage.output_tokens, {**measured, ga.GEN_AI_TOKEN_TYPE: "output"})
        if streamed and response.time_to_first_token is not None:
            self._first_chunk.record(response.time_to_first_token, measured)

    async def tool(
        self, call: ToolCall, tool: Tool | None, answer: Callable[[], Awaitable[ToolMessage]]
    ) -> ToolMessage:
        attributes: dict[str, Any] = {
            ga.GEN_AI_OPERATION_NAME: "execute_tool",
            ga.GEN_AI_TOOL_NAME: call.name,
            ga.GEN_AI_TOOL_CALL_ID: call.id,
            ga.GEN_AI_TOOL_TYPE: "function",
        }
        if tool is not None and tool.description:
            attributes[ga.GEN_AI_TOOL_DESCRIPTION] = _content.cut(tool.description, self.cap)
        if self.capture_content:
            attributes[ga.GEN_AI_TOOL_CALL_ARGUMENTS] = _content.cut(call.arguments, self.cap)
        with self._span(f"execute_tool {call.name}", SpanKind.INTERNAL, attributes) as span:
            message = await answer()
            if message.is_error:  # the model is told; the span says the call did not succeed
                span.set_status(Status(StatusCode.ERROR, _content.cut(message.content, 200)))
                span.set_attribute(error_attributes.ERROR_TYPE, "tool_error")
            if self.capture_content:
                result = _content.cut(message.content, self.cap)
                span.set_attribute(ga.GEN_AI_TOOL_CALL_RESULT, result)
        return message

    def event(self, name: str, attributes: Attributes) -> None:
        trace.get_current_span().add_event(name, dict(attributes))

    @contextmanager
    def span(self, name: str, attributes: Attributes) -> Generator[object, None, None]:
        with self._span(name, SpanKind.INTERNAL, dict(attributes)) as span:
            try:
                yield span
            except Exception as exc:
                _failed(span, exc)
                raise

    def _span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> _Current:
        return _Current(self._tracer.start_span(name, kind=kind, attributes=attributes))


class _Current:
    """A started span, current inside the block and ended when it is left (what
    ``start_as_current_span`` does, without its two generator-based context managers)."""

    __slots__ = ("_token", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._token)  # pyright: ignore[reportArgumentType]
        self.span.end()


class _RunScope:
    """The run's span around the run: the error it ends with, and its totals."""

    __slots__ = ("_current", "_plan", "_state", "_telemetry")

    def __init__(
        self, telemetry: OTelTelemetry, current: _Current, state: RunState, plan: RunPlan
    ) -> None:
        self._telemetry, self._current, self._state, self._plan = telemetry, current, state, plan

    async def __aenter__(self) -> None:
        self._current.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        span = self._current.span
        if isinstance(error, Exception):
            _failed(span, error)
        self._telemetry.run_totals(span, self._state, self._plan.agent_name)
        self._current.__exit__()


def _chat_attributes(model: Model, request: ModelRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        ga.GEN_AI_OPERATION_NAME: "chat",
        ga.GEN_AI_PROVIDER_NAME: model.system,
        ga.GEN_AI_REQUEST_MODEL: model.name,
    }
    address = _server(getattr(model, "base_url", None))
    if address is not None:
        attributes[server_attributes.SERVER_ADDRESS] = address[0]
        attributes[server_attributes.SERVER_PORT] = address[1]
    settings = request.settings
    if settings is not None:
        for field, key in _SETTINGS.items():
            value = getattr(settings, field)
            if value is not None:
                attributes[key] = value
        stop = settings.stop
        if stop is not None:
            attributes[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = (
                [stop] if isinstance(stop, str) else list(stop)
            )
    return attributes


_METRIC_KEYS = (
    ga.GEN_AI_OPERATION_NAME,
    ga.GEN_AI_PROVIDER_NAME,
    ga.GEN_AI_REQUEST_MODEL,
    server_attributes.SERVER_ADDRESS,
    server_attributes.SERVER_PORT,
)


def _metric_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The low-cardinality attributes the conventions give the client metrics."""
    return {key: attributes[key] for key in _METRIC_KEYS if key in attributes}


@cache
def _server(base_url: str | None) -> tuple[str, int] | None:
    if not isinstance(base_url, str):
        return None
    parts = urlsplit(base_url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


def _failed(span: trace.Span, exc: BaseException) -> None:
    """The span ends in error: its status, ``error.type`` (the exception's class name) and the
    exception as an event (its message is scrubbed of keys where it is raised)."""
    span.set_status(Status(StatusCode.ERROR, f"{_kind(exc)}: {exc}"))
    span.set_attribute(error_attributes.ERROR_TYPE, _kind(exc))
    span.record_exception(exc)
