"""Tool dispatch: the tool calls of one turn in, one answer per call out, in the order of the calls.

Calls run in parallel in a task group bounded by a capacity limiter; a tool marked `sequential`
runs alone, in order. A `ToolTurn` changes nothing of the run: it reads the retry counts, and its
`outcome` (an answer for every call id, the retries it used) is the loop's to record, in a
``finally`` block, so that every call is answered also when a sibling fails or the run is
cancelled. A call that repeats one the run already answered gets that answer (see `repeats`).
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

from .. import _telemetry
from .._errors import ToolExecutionError, ToolRetry, ToolsetError
from .._log import get_logger
from .._messages import ToolCall, ToolMessage, UserMessage
from .._tool_return import Numbered, image_lines, images_turn, split_return
from .repeats import CallKey, call_key, reused_answer

if TYPE_CHECKING:
    from .._context import RunContext
    from .._tools import Tool

__all__ = [
    "Approver",
    "DispatchConfig",
    "ToolNotifier",
    "ToolOutcome",
    "ToolTurn",
    "call_tool",
    "canonical_tool_name",
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
    images: bool = False
    """The model takes images: those tools return are shown to it (see `ToolReturn`)."""


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


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one turn of tool calls produced: an answer per call, in call order, the retry keys
    it used (a tool's name, or ``"(unknown tool)"``), one per retry, and how many calls were
    answered from the run's earlier answers instead of running; and the user turn that shows
    the model the images the tools returned, if any."""

    keys: tuple[CallKey, ...]
    answers: tuple[ToolMessage, ...]
    retried: tuple[str, ...]
    reused: int = 0
    images: UserMessage | None = None

    @property
    def all_reused(self) -> bool:
        """Every call of the turn repeated an earlier one: the model has what it asked for."""
        return bool(self.keys) and self.reused == len(self.keys)


class ToolTurn:
    """The tool calls of one turn. ``await turn.run()``, then `outcome()` (also after an error).

    `run` raises `ToolExecutionError` (after every running call ended) when a tool fails and the
    agent ends runs on tool errors, or when a tool's retry budget is spent.
    """

    __slots__ = (
        "_answers",
        "_calls",
        "_counts",
        "_failure",
        "_images",
        "_keys",
        "_retried",
        "_reused",
        "config",
        "ctx",
        "earlier",
        "notify",
    )

    def __init__(
        self,
        calls: Sequence[ToolCall],
        config: DispatchConfig,
        ctx: RunContext[Any],
        retries: Mapping[str, int],
        notify: ToolNotifier | None = None,
        earlier: Mapping[CallKey, ToolMessage] | None = None,
        keys: Sequence[CallKey] | None = None,
    ) -> None:
        self._calls = calls
        self._keys = tuple(keys) if keys is not None else tuple(map(call_key, calls))
        self.config = config
        self.ctx = ctx
        self.notify = notify
        self.earlier: Mapping[CallKey, ToolMessage] = earlier or {}
        self._reused = 0
        self._counts = dict(retries)  # this turn's view; the run's counts change only after it
        self._retried: list[str] = []
        self._answers: list[ToolMessage | None] = [None] * len(calls)
        self._failure: BaseException | None = None
        self._images: dict[int, Numbered] | None = None

    async def run(self) -> None:
        calls = self._calls
        for batch in _batches(calls, self.config.tools):
            if len(batch) == 1:  # one call: no task to spawn, no limiter to pass
                with anyio.CancelScope() as scope:
                    await _run_one(self, batch[0], calls[batch[0]], None, scope)
            else:
                async with anyio.create_task_group() as tg:
                    limiter = anyio.CapacityLimiter(self.config.concurrency)
                    for index in batch:
                        tg.start_soon(_run_one, self, index, calls[index], limiter, tg.cancel_scope)
            if self._failure is not None:
                raise self._failure

    def outcome(self) -> ToolOutcome:
        """Every call's answer (a call that did not finish is answered as cancelled)."""
        answers = zip(self._calls, self._answers, strict=True)
        images = self._images
        return ToolOutcome(
            self._keys,
            tuple(answer or _cancelled(call) for call, answer in answers),
            tuple(self._retried),
            self._reused,
            images_turn([(self._calls[i], images[i]) for i in sorted(images)]) if images else None,
        )

    def reuse(self, index: int, call: ToolCall, tool: Tool) -> ToolMessage | None:
        """The answer to `call` (the turn's `index`th) from an earlier turn's identical call,
        unless `tool` reruns."""
        earlier = None if tool.rerun or not self.earlier else self.earlier.get(self._keys[index])
        if earlier is None:
            return None
        self._reused += 1
        _log.debug("tool_call_reused", run_id=self.ctx.run_id, tool=call.name, tool_call_id=call.id)
        return reused_answer(call, earlier)

    def record(self, index: int, answer: ToolMessage) -> None:
        self._answers[index] = answer

    def answer_with(self, index: int, call: ToolCall, value: Any) -> ToolMessage:
        """The answer to a call that returned `value`; the images it returned are kept for the
        turn's images message."""
        value, images = split_return(value)
        text = tool_result_text(value, self.config.max_result_chars)
        if images:
            lines, shown = image_lines(images, self.config.images)
            text = f"{text}\n{lines}" if text else lines
            if shown:
                self._images = {**(self._images or {}), index: shown}
        return ToolMessage(call.id, text, call.name)

    def count_retry(self, key: str) -> int:
        used = self._counts.get(key, 0) + 1
        self._counts[key] = used
        self._retried.append(key)
        return used

    def fail(self, failure: BaseException, scope: anyio.CancelScope) -> None:
        """End the turn with `failure` (the first one wins): cancel the calls still running."""
        if self._failure is None:
            self._failure = failure
            scope.cancel()

    @property
    def failed(self) -> bool:
        return self._failure is not None


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
    turn: ToolTurn,
    index: int,
    call: ToolCall,
    limiter: anyio.CapacityLimiter | None,
    scope: anyio.CancelScope,
) -> None:
    started = time.perf_counter()
    if limiter is None:
        answer = await _answering(turn, index, call, scope)
    else:
        async with limiter:
            answer = await _answering(turn, index, call, scope)
    turn.record(index, answer)
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


def _answering(
    turn: ToolTurn, index: int, call: ToolCall, scope: anyio.CancelScope
) -> Awaitable[ToolMessage]:
    """`_answer`, inside the telemetry's tool span when one is active (the tool's own spans
    nest under it)."""
    telemetry = _telemetry.active
    if telemetry is None:
        return _answer(turn, index, call, scope)
    tool = turn.config.tools.get(call.name)
    return telemetry.tool(call, tool, lambda: _answer(turn, index, call, scope))


async def _answer(
    turn: ToolTurn, index: int, call: ToolCall, scope: anyio.CancelScope
) -> ToolMessage:
    config = turn.config
    tool = config.tools.get(call.name)
    if tool is None:
        names = ", ".join(sorted(config.tools)) or "(none)"
        text = f"Unknown tool {call.name!r}. Valid tools: {names}."
        return _retry_answer(turn, call, _UNKNOWN, config.unknown_tool_retries, text, scope)
    reused = turn.reuse(index, call, tool)
    if reused is not None:
        return reused
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
    except ToolsetError as exc:  # the tools' source failed: the run cannot go on with it
        text = f"Tool {call.name!r} could not run: {exc}"
        if not turn.failed:
            turn.fail(exc, scope)
        return ToolMessage(call.id, text, call.name, is_error=True)
    except Exception as exc:
        text = f"Tool {call.name!r} failed: {type(exc).__name__}: {exc}"
        return _error_answer(turn, call, text, exc, scope)
    return turn.answer_with(index, call, value)


async def call_tool(
    tool: Tool, arguments: dict[str, Any], ctx: RunContext[Any]
) -> tuple[Any, bool]:
    """Call `tool` under its timeout (a tool without one is simply awaited): (value, timed out)."""
    if tool.timeout is None:
        return await tool.call(arguments, ctx), False
    with anyio.move_on_after(tool.timeout):
        return await tool.call(arguments, ctx), False
    return None, True


async def _approved(turn: ToolTurn, call: ToolCall) -> bool:
    approver = turn.config.approver
    if approver is None:
        return False
    verdict = approver(call, turn.ctx)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    _telemetry.event("agentloop.approval", {"approved": bool(verdict)})
    return bool(verdict)


def _retry_answer(
    turn: ToolTurn, call: ToolCall, key: str, budget: int, text: str, scope: anyio.CancelScope
) -> ToolMessage:
    used = turn.count_retry(key)
    _log.info("tool_retry", run_id=turn.ctx.run_id, tool=call.name, attempt=used, reason=text)
    if used > budget and not turn.failed:
        message = f"tool {call.name!r} exceeded its retry budget ({budget}); last error: {text}"
        turn.fail(ToolExecutionError(message, tool_name=call.name, tool_call_id=call.id), scope)
    return ToolMessage(call.id, text, call.name, is_error=True)


def _error_answer(
    turn: ToolTurn, call: ToolCall, text: str, exc: BaseException | None, scope: anyio.CancelScope
) -> ToolMessage:
    _log.error("tool_error", run_id=turn.ctx.run_id, tool=call.name, error=text)
    if turn.config.raise_tool_errors and not turn.failed:
        failure = ToolExecutionError(text, tool_name=call.name, tool_call_id=call.id)
        failure.__cause__ = exc
        turn.fail(failure, scope)
    return ToolMessage(call.id, text, call.name, is_error=True)
