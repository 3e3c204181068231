"""Tool dispatch: the tool calls of one turn in, one answer per call out, in the order of the calls.

Calls run in parallel in a task group bounded by a capacity limiter; a tool marked `sequential`
runs alone, in order. Every call id is answered, also when a sibling fails or the run is cancelled:
the answers are appended to the transcript in a ``finally`` block.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ToolExecutionError, ToolRetry
from .._log import get_logger
from .._messages import Message, ToolCall, ToolMessage

if TYPE_CHECKING:
    from .._context import RunContext
    from .._tools import Tool

__all__ = [
    "Approver",
    "DispatchConfig",
    "ToolNotifier",
    "call_tool",
    "canonical_tool_name",
    "dispatch",
    "tool_result_text",
]

Approver = Callable[[ToolCall, "RunContext[Any]"], bool | Awaitable[bool]]
ToolNotifier = Callable[[ToolCall, ToolMessage, float], Awaitable[None]]

_log = get_logger()
_UNKNOWN = "(unknown tool)"
_JUNK = " \t\n\"'`:;,."  # around a tool name the model decorated


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """The agent's dispatch options."""

    tools: Mapping[str, Tool]
    concurrency: int = 16
    max_result_chars: int = 50_000
    raise_tool_errors: bool = False
    unknown_tool_retries: int = 2
    approver: Approver | None = None


def canonical_tool_name(name: str, known: Collection[str]) -> str | None:
    """The one known tool a name decorated by the model means, or None.

    Small models write ``functions.get_weather``, ``get_weather:``, ``"get_weather"`` or
    ``Get-Weather``: quotes, spaces, trailing punctuation, ``()`` and a namespace
    (``functions.``, ``tools.``) are dropped; failing an exact match, names are compared without
    case and with ``-`` as ``_``. A name that so matches no known tool, or more than one, is not
    guessed.
    """
    bare = re.split(r"[.:]", name.strip(_JUNK).removesuffix("()").strip(_JUNK))[-1]
    if bare in known:  # no tool name has a dot or a colon: what came before was a namespace
        return bare
    key = _fold(bare)
    found = [tool for tool in known if _fold(tool) == key]
    return found[0] if len(found) == 1 else None


def _fold(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def tool_result_text(value: Any, cap: int) -> str:
    """A tool's return value as text for the model: str as is, everything else as JSON."""
    if isinstance(value, str):
        text = value
    else:
        from pydantic_core import to_json

        try:
            text = to_json(value, fallback=str).decode()
        except Exception:  # a value pydantic cannot serialize at all
            text = str(value)
    if len(text) > cap:
        dropped = len(text) - cap
        text = f"{text[:cap]}\n[... truncated: {dropped} of {len(text)} characters not shown]"
    return text


@dataclass(slots=True)
class _Turn:
    config: DispatchConfig
    ctx: RunContext[Any]
    retries: dict[str, int]
    notify: ToolNotifier | None
    answers: list[ToolMessage | None]
    failure: BaseException | None = None


async def dispatch(
    calls: Sequence[ToolCall],
    config: DispatchConfig,
    ctx: RunContext[Any],
    retries: dict[str, int],
    transcript: list[Message],
    notify: ToolNotifier | None = None,
) -> None:
    """Run `calls` and append one `ToolMessage` per call to `transcript`, in call order.

    Raises `ToolExecutionError` (after every call is answered) when a tool fails and the agent
    ends runs on tool errors, or when a tool's retry budget is spent.
    """
    turn = _Turn(config, ctx, retries, notify, [None] * len(calls))
    try:
        for batch in _batches(calls, config.tools):
            if len(batch) == 1:  # one call: no task to spawn, no limiter to pass
                with anyio.CancelScope() as scope:
                    await _run_one(turn, batch[0], calls[batch[0]], None, scope)
            else:
                async with anyio.create_task_group() as tg:
                    limiter = anyio.CapacityLimiter(config.concurrency)
                    for index in batch:
                        tg.start_soon(_run_one, turn, index, calls[index], limiter, tg.cancel_scope)
            if turn.failure is not None:
                break
    finally:
        for call, answer in zip(calls, turn.answers, strict=True):
            transcript.append(answer or _cancelled(call))
    if turn.failure is not None:
        raise turn.failure


def _batches(calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> list[list[int]]:
    batches: list[list[int]] = []
    parallel: list[int] = []
    for index, call in enumerate(calls):
        tool = tools.get(call.name)
        if tool is not None and tool.sequential:
            if parallel:
                batches.append(parallel)
                parallel = []
            batches.append([index])
        else:
            parallel.append(index)
    if parallel:
        batches.append(parallel)
    return batches


def _cancelled(call: ToolCall) -> ToolMessage:
    text = "Tool call not completed: the run was cancelled or another tool call failed."
    return ToolMessage(call.id, text, call.name, is_error=True)


async def _run_one(
    turn: _Turn,
    index: int,
    call: ToolCall,
    limiter: anyio.CapacityLimiter | None,
    scope: anyio.CancelScope,
) -> None:
    started = time.perf_counter()
    if limiter is None:
        answer = await _answer(turn, call, scope)
    else:
        async with limiter:
            answer = await _answer(turn, call, scope)
    turn.answers[index] = answer
    duration = time.perf_counter() - started
    _log.debug(
        "tool_call",
        run_id=turn.ctx.run_id,
        tool=call.name,
        tool_call_id=call.id,
        duration=round(duration, 6),
        outcome="error" if answer.is_error else "ok",
    )
    if turn.notify is not None:
        await turn.notify(call, answer, duration)


async def _answer(turn: _Turn, call: ToolCall, scope: anyio.CancelScope) -> ToolMessage:
    config = turn.config
    tool = config.tools.get(call.name)
    if tool is None:
        names = ", ".join(sorted(config.tools)) or "(none)"
        text = f"Unknown tool {call.name!r}. Valid tools: {names}."
        return _retry_answer(turn, call, _UNKNOWN, config.unknown_tool_retries, text, scope)
    try:
        arguments = tool.parse_arguments(call.arguments)
        if tool.requires_approval and not await _approved(turn, call):
            text = f"Tool {call.name!r} was not approved; it did not run."
            return ToolMessage(call.id, text, call.name, is_error=True)
        ctx = dataclasses.replace(turn.ctx, tool_call_id=call.id, tool_name=call.name)
        value, timed_out = await call_tool(tool, arguments, ctx)
        if timed_out:
            text = f"Tool {call.name!r} timed out after {tool.timeout} s."
            return _error_answer(turn, call, text, None, scope)
    except ToolRetry as signal:
        return _retry_answer(turn, call, tool.name, tool.max_retries, signal.message, scope)
    except Exception as exc:
        text = f"Tool {call.name!r} failed: {type(exc).__name__}: {exc}"
        return _error_answer(turn, call, text, exc, scope)
    return ToolMessage(call.id, tool_result_text(value, config.max_result_chars), call.name)


async def call_tool(
    tool: Tool, arguments: dict[str, Any], ctx: RunContext[Any]
) -> tuple[Any, bool]:
    """Call `tool` under its timeout (a tool without one is simply awaited): (value, timed out)."""
    if tool.timeout is None:
        return await tool.call(arguments, ctx), False
    with anyio.move_on_after(tool.timeout):
        return await tool.call(arguments, ctx), False
    return None, True


async def _approved(turn: _Turn, call: ToolCall) -> bool:
    approver = turn.config.approver
    if approver is None:
        return False
    verdict = approver(call, turn.ctx)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


def _retry_answer(
    turn: _Turn, call: ToolCall, key: str, budget: int, text: str, scope: anyio.CancelScope
) -> ToolMessage:
    used = turn.retries.get(key, 0) + 1
    turn.retries[key] = used
    turn.ctx.usage.retries += 1
    _log.info("tool_retry", run_id=turn.ctx.run_id, tool=call.name, attempt=used, reason=text)
    if used > budget and turn.failure is None:
        message = f"tool {call.name!r} exceeded its retry budget ({budget}); last error: {text}"
        turn.failure = ToolExecutionError(message, tool_name=call.name, tool_call_id=call.id)
        scope.cancel()
    return ToolMessage(call.id, text, call.name, is_error=True)


def _error_answer(
    turn: _Turn, call: ToolCall, text: str, exc: BaseException | None, scope: anyio.CancelScope
) -> ToolMessage:
    _log.error("tool_error", run_id=turn.ctx.run_id, tool=call.name, error=text)
    if turn.config.raise_tool_errors and turn.failure is None:
        failure = ToolExecutionError(text, tool_name=call.name, tool_call_id=call.id)
        failure.__cause__ = exc
        turn.failure = failure
        scope.cancel()
    return ToolMessage(call.id, text, call.name, is_error=True)
