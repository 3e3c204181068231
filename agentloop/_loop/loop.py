"""The run loop: the only place that knows the order of the stages.

prompt -> messages -> request -> model -> response -> tool dispatch | output validation -> result.
Streamed and non-streamed runs share this loop; a stream only passes an event sink.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from .._context import RunContext
from .._errors import AgentloopError, OutputTruncatedError, RefusalError
from .._history import initial_messages
from .._log import get_logger
from .._messages import Message, ModelRequest, ModelResponse, ToolCall
from .._prices import CostMeter
from .._result import RequestStats, RunResult, RunTiming
from .._usage import Usage
from .dispatch import canonical_tool_name, dispatch
from .guard import LimitGuard
from .output_step import OutputStep, ReAsk
from .window import Window

if TYPE_CHECKING:
    from .._agent import Agent, Prompt
    from .._events import EventSink
    from .._limits import Limits
    from .._settings import ModelSettings

__all__ = ["run_loop"]

_log = get_logger()
Requester = Callable[[ModelRequest], Awaitable[ModelResponse]]


async def run_loop(
    agent: Agent[Any],
    prompt: Prompt | None,
    history: Sequence[Message] | None,
    deps: Any,
    settings: ModelSettings | None,
    limits: Limits | None,
    sink: EventSink | None,
) -> RunResult[Any]:
    """Run `agent` to its output. Any agentloop error leaves with the transcript and usage."""
    model = agent.model
    run_id = uuid.uuid4().hex[:16]
    ctx = RunContext(deps, Usage(), [], run_id, {})
    meter = CostMeter()
    started = time.perf_counter()
    log = _log.bind(run_id=run_id, model=model.name)
    log.info("run_start")
    if sink is not None:
        sink.attach(ctx)
    try:
        result = await _loop(agent, ctx, meter, prompt, history, settings, limits, sink, started)
    except AgentloopError as exc:
        exc.messages, exc.usage, exc.cost = list(ctx.messages), ctx.usage.copy(), meter.total
        log.info("run_end", outcome=type(exc).__name__, requests=ctx.usage.requests)
        raise
    log.info("run_end", outcome="ok", requests=ctx.usage.requests, cost=result.cost)
    return result


async def _loop(
    agent: Agent[Any],
    ctx: RunContext[Any],
    meter: CostMeter,
    prompt: Prompt | None,
    history: Sequence[Message] | None,
    settings: ModelSettings | None,
    limits: Limits | None,
    sink: EventSink | None,
    started: float,
) -> RunResult[Any]:
    model = agent.model
    step = OutputStep.for_agent(agent, model.profile)
    base_settings = agent.settings | settings
    guard = LimitGuard(limits or agent.limits, model.name, meter)
    window = Window(model, agent.history_policy, ctx, meter)
    messages = ctx.messages
    messages.extend(await initial_messages(agent, ctx, step, prompt, history))
    retries: dict[str, int] = {}
    ctx.retries = retries
    stats: list[RequestStats] = []
    request_settings = step.settings(base_settings)
    known = frozenset(t.name for t in step.tools)
    re_ask = False
    while True:
        pending = ModelRequest(tuple(messages), step.tools, request_settings, step.response_format)
        request = await window.fit(pending)  # what is sent; `messages` keeps everything
        guard.before_request(ctx.usage, request, counts_as_turn=not re_ask)
        response = _canonical_names(await _send(model, request, sink, ctx), known, ctx.run_id)
        stats.append(RequestStats.of(response))
        messages.append(response.message)
        guard.after_request(ctx.usage, response)
        calls = response.message.tool_calls
        outcome = await step.read(response, ctx, retries) if not _needs_tools(step, calls) else None
        if outcome is None:
            _check_answerable(response)
            guard.before_tools(calls, messages)
            notify = sink.on_tool if sink is not None else None
            config = agent._dispatch  # pyright: ignore[reportPrivateUsage]
            await dispatch(calls, config, ctx, retries, messages, notify)
            ctx.usage.tool_calls += len(calls)
            request_settings = step.after_tool_turn(request_settings)
            re_ask = False
            continue
        if isinstance(outcome, ReAsk):
            messages.extend(outcome.messages)
            re_ask = True
            continue
        messages.extend(outcome.messages)
        elapsed = time.perf_counter() - started
        timing = RunTiming.of(stats, elapsed)
        return RunResult(
            outcome.value,
            list(messages),
            ctx.usage.copy(),
            meter.total,
            tuple(stats),
            timing,
            ctx.run_id,
        )


def _canonical_names(response: ModelResponse, known: Collection[str], run_id: str) -> ModelResponse:
    """Tool calls under a name the model decorated (``functions.get_weather``) get the tool's
    own name, before the transcript keeps them; an exact or unmatched name stays as it is."""
    message = response.message
    if all(call.name in known for call in message.tool_calls):
        return response
    calls: list[ToolCall] = []
    for call in message.tool_calls:
        name = call.name if call.name in known else canonical_tool_name(call.name, known)
        if name is not None and name != call.name:
            _log.debug("tool_name_normalized", run_id=run_id, name=call.name, tool=name)
            call = dataclasses.replace(call, name=name)
        calls.append(call)
    return response.replace(message=dataclasses.replace(message, tool_calls=tuple(calls)))


def _needs_tools(step: OutputStep, calls: Sequence[ToolCall]) -> bool:
    """The model called tools (not only the output tool): run them and loop."""
    return bool(calls) and not step.has_output_call(calls)


def _check_answerable(response: ModelResponse) -> None:
    if response.message.refusal:
        raise RefusalError(
            f"the model refused: {response.message.refusal}", refusal=response.message.refusal
        )
    if response.finish_reason == "length":
        raise OutputTruncatedError("the model hit its token limit in the middle of its tool calls")


async def _send(
    model: Any, request: ModelRequest, sink: EventSink | None, ctx: RunContext[Any]
) -> ModelResponse:
    if sink is None:
        response: ModelResponse = await model.request(request)
    else:
        response = await sink.stream_request(model, request)
    ctx.usage.add_request(response.usage, retries=response.retries)
    _log.info(
        "model_request",
        run_id=ctx.run_id,
        model=response.model,
        request=ctx.usage.requests,
        latency=response.latency,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        retries=response.retries,
    )
    return response
