"""`Agent`: immutable configuration. Execution lives in `_run.py`."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import anyio

from ._errors import UsageError
from ._history_policy import DEFAULT_HISTORY_POLICY, HistoryPolicy
from ._limits import Limits
from ._loop.dispatch import Approver, DispatchConfig
from ._messages import ToolDefinition
from ._output import OUTPUT_TOOL_NAME, OutputSpec
from ._settings import ModelSettings
from ._tools import Tool, tool
from ._wire.models import infer_model
from ._wire.profiles import ModelProfile, OutputMode

if TYPE_CHECKING:
    from ._context import RunContext
    from ._loop.output_step import OutputStep
    from ._loop.run_stream import RunStream
    from ._messages import Message
    from ._result import RunResult
    from ._wire.models import Model

__all__ = ["Agent", "Instructions", "OutputValidator", "Prompt"]

OutputT = TypeVar("OutputT")
Instructions = str | Callable[["RunContext[Any]"], str | Awaitable[str]]
OutputValidator = Callable[..., Any]
Prompt = str | Sequence[dict[str, Any]]
"""What a run starts from, besides its history. One of:

- a str: one user message;
- a list of OpenAI-style message dicts: a conversation that goes after the history. Roles
  ``system`` (``developer`` is a synonym, sent as ``system``), ``user``, ``assistant`` (``content``
  may be null when it has ``tool_calls``, given in the wire form ``[{"id", "type": "function",
  "function": {"name", "arguments"}}]``, where ``arguments`` is a JSON-object str or a dict) and
  ``tool`` (``tool_call_id``, ``content``). Leading system messages join the agent's instructions
  (after them) in the one first system message, and like them replace a history's stored one. The
  list may end with any role: after a user or tool message the model answers, after an assistant
  message it takes the next turn. Tool calls left unanswered are answered with an error, as in a
  history (`repair_history`);
- a list of content-part dicts (``{"type": "text", "text": ...}``, ``image_url``, ``input_audio``,
  ``file``): the content of one user message.

A prompt the API would reject (an unknown role or part type, a missing field, a tool message that
answers no call, an empty list...) raises `UsageError`, naming its index, before any request.
"""


class Agent(Generic[OutputT]):
    """An agent: a model, instructions, tools and an output type. Immutable; safe to share.

    Args:
        model: a model object, or a string such as ``"openai:gpt-4o-mini"`` or
            ``"openrouter:openai/gpt-3.5-turbo-0613"``.
        instructions: a system prompt, or a function of the `RunContext` (sync or async).
        tools: `Tool` objects or plain functions (wrapped with `tool`).
        output_type: `str`, a Pydantic model, dataclass, TypedDict, list or union of those, or a
            JSON-schema dict.
        settings: default `ModelSettings`; a run's settings override them field by field.
        max_turns: shorthand for ``limits=Limits(max_turns=...)``.
        limits: default `Limits` of every run.
        output_mode: ``"native"``, ``"tool"`` or ``"prompted"``; by default the model profile's.
        output_retries: re-asks allowed for invalid output.
        output_validators: functions of the output (and optionally the run context) that may
            raise `ToolRetry` to re-ask.
        strict: strict schemas for tools and output: True, False, or None for automatic.
        tool_concurrency: tool calls of one turn that run at once.
        tool_errors: ``"return"`` sends a failing tool's error to the model; ``"raise"`` ends
            the run with `ToolExecutionError`.
        max_tool_result_chars: longer tool results are truncated with a visible marker.
        approver: asked before any tool marked ``requires_approval`` runs; without one, such
            tools never run.
        history_policy: shortens what is sent when a request would not fit the model's context
            window (see `agentloop._history_policy`); the default truncates large tool results,
            then drops the oldest messages. None sends everything, and raises
            `ContextWindowError` before sending a request the catalog says cannot fit.
    """

    __slots__ = (
        "_dispatch",
        "_model",
        "_output",
        "_steps",
        "_tool_definitions",
        "history_policy",
        "instructions",
        "limits",
        "output_mode",
        "output_retries",
        "output_type",
        "output_validators",
        "settings",
        "strict",
        "tools",
    )
    _model: Model
    _output: OutputSpec
    _steps: dict[ModelProfile, OutputStep]
    _tool_definitions: tuple[ToolDefinition, ...]
    _dispatch: DispatchConfig
    history_policy: HistoryPolicy | None
    instructions: Instructions | None
    limits: Limits
    output_mode: OutputMode | None
    output_retries: int
    output_type: Any
    output_validators: tuple[OutputValidator, ...]
    settings: ModelSettings
    strict: bool | None
    tools: tuple[Tool, ...]

    def __init__(
        self,
        model: Model | str,
        *,
        instructions: Instructions | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        output_type: type[OutputT] | Any = str,
        settings: ModelSettings | None = None,
        max_turns: int | None = None,
        limits: Limits | None = None,
        output_mode: OutputMode | None = None,
        output_retries: int = 2,
        output_validators: Sequence[OutputValidator] = (),
        strict: bool | None = None,
        tool_concurrency: int = 16,
        tool_errors: Literal["return", "raise"] = "return",
        max_tool_result_chars: int = 50_000,
        approver: Approver | None = None,
        history_policy: HistoryPolicy | None = DEFAULT_HISTORY_POLICY,
    ) -> None:
        built = tuple(t if isinstance(t, Tool) else tool(t) for t in tools)
        by_name = _tools_by_name(built, output_mode == "tool" and output_type is not str)
        limits = limits or Limits()
        if max_turns is not None:
            limits = dataclasses.replace(limits, max_turns=max_turns)
        if tool_concurrency < 1 or output_retries < 0 or max_tool_result_chars < 1:
            raise UsageError(
                "tool_concurrency and max_tool_result_chars must be >= 1, retries >= 0"
            )
        assign = partial(object.__setattr__, self)
        assign("_model", infer_model(model) if isinstance(model, str) else model)
        assign("instructions", instructions)
        assign("tools", built)
        assign("output_type", output_type)
        assign("settings", settings or ModelSettings())
        assign("limits", limits)
        assign("output_mode", output_mode)
        assign("output_retries", output_retries)
        assign("output_validators", tuple(output_validators))
        assign("strict", strict)
        assign("history_policy", history_policy)
        assign("_output", OutputSpec.build(output_type))
        assign("_steps", {})
        assign("_tool_definitions", tuple(t.definition(strict) for t in built))
        assign(
            "_dispatch",
            DispatchConfig(
                by_name,
                tool_concurrency,
                max_tool_result_chars,
                tool_errors == "raise",
                approver=approver,
            ),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Agent is immutable; build a new one (tried to set {name!r})")

    def __repr__(self) -> str:
        model = self._model.name
        names = [t.name for t in self.tools]
        return f"Agent(model={model!r}, tools={names!r}, output_type={self.output_type!r})"

    @property
    def model(self) -> Model:
        """The model object (a model string was resolved when the agent was built)."""
        return self._model

    async def run(
        self,
        prompt: Prompt | None = None,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        settings: ModelSettings | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]:
        """Run the agent to its final output. Errors carry `.messages` and `.usage`.

        `prompt` is a str, a list of message dicts or a list of content parts (see `Prompt`); it
        goes after `history`. At least one of the two is needed. An invalid prompt raises
        `UsageError` before any request is sent.
        """
        from ._loop.loop import run_loop

        return await run_loop(self, prompt, history, deps, settings, limits, None)

    @overload
    def run_sync(self, prompt: Prompt | None = None) -> RunResult[OutputT]: ...
    @overload
    def run_sync(
        self,
        prompt: Prompt | None = None,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        settings: ModelSettings | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]: ...
    def run_sync(
        self,
        prompt: Prompt | None = None,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        settings: ModelSettings | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]:
        """`run` for scripts: starts an event loop, so it cannot be called from inside one."""
        call = partial(
            self.run, prompt, history=history, deps=deps, settings=settings, limits=limits
        )
        return _run_blocking(call)

    def run_stream(
        self,
        prompt: Prompt | None = None,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        settings: ModelSettings | None = None,
        limits: Limits | None = None,
    ) -> RunStream[OutputT]:
        """Stream a run: ``async with agent.run_stream(...) as stream: async for event in stream``.

        After the iteration, ``stream.result`` is the `RunResult`.
        """
        from ._loop.run_stream import RunStream

        return RunStream(self, prompt, history, deps, settings, limits)

    def run_stream_sync(
        self,
        prompt: Prompt | None = None,
        *,
        on_event: Callable[[Any], object],
        history: Sequence[Message] | None = None,
        deps: Any = None,
        settings: ModelSettings | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]:
        """`run_stream` for scripts: calls ``on_event(event)`` for each event, returns the result.

        An exception from `on_event` cancels the run (as leaving ``async with`` early does).
        """

        async def consume() -> RunResult[OutputT]:
            async with self.run_stream(
                prompt, history=history, deps=deps, settings=settings, limits=limits
            ) as stream:
                async for event in stream:
                    on_event(event)
            return stream.result

        return _run_blocking(consume)


def _run_blocking(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return anyio.run(call)
    except RuntimeError as exc:
        if "already running" in str(exc).lower():
            raise UsageError(
                "run_sync was called inside a running event loop; use `await agent.run(...)`"
            ) from exc
        raise


def _tools_by_name(tools: Sequence[Tool], output_tool: bool) -> dict[str, Tool]:
    """The tools by name. With `output_tool` (output_mode "tool" asked for structured output),
    the output tool's name is taken; else the run checks it once the mode is known."""
    by_name: dict[str, Tool] = {}
    for item in tools:
        if item.name in by_name:
            raise UsageError(f"two tools are named {item.name!r}; tool names must be unique")
        if output_tool and item.name == OUTPUT_TOOL_NAME:
            raise UsageError(
                f"the tool name {OUTPUT_TOOL_NAME!r} is reserved for the output in output_mode "
                "'tool'; rename the tool or pick another output_mode"
            )
        by_name[item.name] = item
    if len(by_name) > 128:
        raise UsageError(f"{len(by_name)} tools: the API accepts at most 128 per request")
    return by_name
