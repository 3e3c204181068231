"""`Agent`: immutable configuration, and its `RunPlan`. Execution lives in `agentloop._loop`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, Unpack

from ._errors import UsageError
from ._history_policy import DEFAULT_HISTORY_POLICY, HistoryPolicy
from ._settings import ModelSettings
from ._tools import Tool, tool

# The plan's and the loop's modules (and anyio) load when an agent is built or run, not when
# `Agent` is imported: `import agentloop` stays fast.
if TYPE_CHECKING:
    from ._events import RunEvent
    from ._handoff import Handoff
    from ._limits import Limits
    from ._loop.dispatch import Approver
    from ._loop.plan import Instructions, Prompt, RunOptions, RunPlan
    from ._loop.run_stream import RunStream
    from ._result import RunResult
    from ._toolsets import Toolset
    from ._wire.models import Model
    from ._wire.profiles import OutputMode

__all__ = ["Agent", "OutputValidator"]

OutputT = TypeVar("OutputT")
OutputValidator = Callable[..., Any]


class Agent(Generic[OutputT]):
    """An agent: a model, instructions, tools and an output type. Immutable; safe to share.

    Args:
        model: a model object, or a string such as ``"openai:gpt-4o-mini"`` or
            ``"openrouter:openai/gpt-3.5-turbo-0613"``.
        instructions: a system prompt, or a function of the `RunContext` (sync or async).
        name: names the agent where it is used by others (`as_tool`), and in the result's
            usage per agent.
        tools: `Tool` objects or plain functions (wrapped with `tool`).
        toolsets: sources of tools listed when each run starts, such as MCP servers
            (`agentloop.mcp.MCPServer`); see `Toolset`.
        handoffs: agents (or `handoff(...)`s) the model may hand the conversation to; see
            `agentloop._handoff`.
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
            tools never run. ``"defer"`` stops the run before such calls instead, to be
            resumed with the decisions (`resume`; see `agentloop._deferred`).
        history_policy: shortens what is sent when a request would not fit the model's context
            window (see `agentloop._history_policy`); the default truncates large tool results,
            then drops the oldest messages. None sends everything, and raises
            `ContextWindowError` before sending a request the catalog says cannot fit.

    `replace` returns a copy with some options changed. What a run reads from the agent is its
    plan (`agentloop._loop.plan.RunPlan`), built once, here.
    """

    __slots__ = (
        "_plan",
        "approver",
        "handoffs",
        "history_policy",
        "instructions",
        "limits",
        "max_tool_result_chars",
        "name",
        "output_mode",
        "output_retries",
        "output_type",
        "output_validators",
        "settings",
        "strict",
        "tool_concurrency",
        "tool_errors",
        "tools",
        "toolsets",
    )
    _plan: RunPlan  # what a run reads: this agent resolved for the loop
    approver: Approver | Literal["defer"] | None
    handoffs: tuple[Handoff, ...]
    history_policy: HistoryPolicy | None
    instructions: Instructions | None
    limits: Limits
    max_tool_result_chars: int
    name: str | None
    output_mode: OutputMode | None
    output_retries: int
    output_type: Any
    output_validators: tuple[OutputValidator, ...]
    settings: ModelSettings
    strict: bool | None
    tool_concurrency: int
    tool_errors: Literal["return", "raise"]
    tools: tuple[Tool, ...]
    toolsets: tuple[Toolset, ...]

    def __init__(
        self,
        model: Model | str,
        *,
        instructions: Instructions | None = None,
        name: str | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        toolsets: Sequence[Toolset] = (),
        handoffs: Sequence[Agent[Any] | Handoff] = (),
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
        approver: Approver | Literal["defer"] | None = None,
        history_policy: HistoryPolicy | None = DEFAULT_HISTORY_POLICY,
    ) -> None:
        if tool_concurrency < 1 or output_retries < 0 or max_tool_result_chars < 1:
            raise UsageError(
                "tool_concurrency and max_tool_result_chars must be >= 1, retries >= 0"
            )
        from ._limits import Limits  # deferred: see the imports
        from ._wire.models import infer_model

        limits = limits or Limits()
        if max_turns is not None:
            limits = dataclasses.replace(limits, max_turns=max_turns)
        built = tuple(t if isinstance(t, Tool) else tool(t) for t in tools)
        assign = partial(object.__setattr__, self)
        assign("instructions", instructions)
        assign("name", name)
        assign("tools", built)
        assign("toolsets", _checked_toolsets(toolsets))
        assign("handoffs", _handoffs(handoffs))
        assign("output_type", output_type)
        assign("settings", settings or ModelSettings())
        assign("limits", limits)
        assign("output_mode", output_mode)
        assign("output_retries", output_retries)
        assign("output_validators", tuple(output_validators))
        assign("strict", strict)
        assign("tool_concurrency", tool_concurrency)
        assign("tool_errors", tool_errors)
        assign("max_tool_result_chars", max_tool_result_chars)
        assign("approver", approver)
        assign("history_policy", history_policy)
        assign("_plan", self._build_plan(infer_model(model) if isinstance(model, str) else model))

    def _build_plan(self, model: Model) -> RunPlan:
        from ._handoff import HandoffPlan, handoff_tool  # deferred: see the imports
        from ._loop.dispatch import DispatchConfig
        from ._loop.plan import OutputPlan, RunPlan
        from ._output import OutputSpec
        from ._prices import lookup_model
        from ._subrun import runs_an_agent

        structured_tool = self.output_mode == "tool" and self.output_type is not str
        tools = (*self.tools, *(handoff_tool(h) for h in self.handoffs))
        dispatch = DispatchConfig(
            _tools_by_name(tools, structured_tool),
            self.tool_concurrency,
            self.max_tool_result_chars,
            self.tool_errors == "raise",
            approver=None if self.approver == "defer" else self.approver,
            images=model_info.images
            if (model_info := lookup_model(model.name, model.system))
            else False,
        )
        output = OutputPlan(
            OutputSpec.build(self.output_type),
            self.output_mode,
            self.strict,
            self.output_validators,
            self.output_retries,
        )
        return RunPlan(
            model,
            self.instructions,
            self.settings,
            self.limits,
            self.history_policy,
            tuple(t.definition(self.strict) for t in tools),
            dispatch,
            output,
            self.toolsets,
            self.name or "agent",
            {h.tool_name: HandoffPlan(h.agent._plan, h.input_filter) for h in self.handoffs},
            defers_approvals=self.approver == "defer",
            uses_budget=bool(self.handoffs) or any(runs_an_agent(t) for t in self.tools),
            opens_toolsets=bool(self.toolsets)
            or any(h.agent._plan.opens_toolsets for h in self.handoffs),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Agent is immutable; use replace() (tried to set {name!r})")

    def __repr__(self) -> str:
        names = [t.name for t in self.tools]
        named = f"name={self.name!r}, " if self.name else ""
        return (
            f"Agent({named}model={self.model.name!r}, tools={names!r}, "
            f"output_type={self.output_type!r})"
        )

    @property
    def model(self) -> Model:
        """The model object (a model string was resolved when the agent was built)."""
        return self._plan.model

    def as_tool(self, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a tool of another: the parent's model calls it with a ``prompt``, and
        this agent's output is the tool's result.

        The sub-run gets the parent's ``deps``; it is bounded by its own limits and by what the
        parent has left; its usage and cost join the parent's (``RunResult.usage_by_agent``
        shows them per agent); cancelling the parent cancels it. A sub-run that fails is the
        tool's error, its spending counted all the same. `name` defaults to the agent's.
        """
        from ._subrun import agent_tool  # deferred: see the imports

        return agent_tool(self, name, description)

    def replace(self, **changes: Any) -> Agent[OutputT]:
        """A new agent with `changes` (any of the constructor's keyword arguments) applied.

        ``agent.replace(model="openai:gpt-4o")``, ``agent.replace(tools=[...])``. ``max_turns``
        applies to the limits kept (or given). A changed ``output_type`` makes an agent of
        another output type: annotate the variable it goes to.
        """
        unknown = set(changes) - set(_OPTIONS)
        if unknown:
            raise UsageError(f"Agent.replace got unknown options: {', '.join(sorted(unknown))}")
        options: dict[str, Any] = {name: getattr(self, name) for name in _KEPT}
        options["model"] = self.model
        options.update(changes)
        return type(self)(**options)

    async def run(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> RunResult[OutputT]:
        """Run the agent to its final output. Errors carry `.messages` and `.usage`.

        `prompt` is a str, a list of message dicts or a list of content parts (see `Prompt`); it
        goes after ``history``. At least one of the two is needed. An invalid prompt raises
        `UsageError` before any request is sent. The keyword arguments are `RunOptions`:
        ``history``, ``deps``, ``settings`` and ``limits``.
        """
        from ._loop.loop import run_loop
        from ._loop.plan import RunArgs

        return await run_loop(self._plan, RunArgs.of(prompt, options), None)

    async def resume(
        self,
        state_json: str | bytes,
        approvals: Mapping[str, bool],
        **options: Unpack[RunOptions],
    ) -> RunResult[OutputT]:
        """Go on with a run that stopped before calls needing approval (``approver="defer"``).

        `state_json` is ``result.state_json()``; `approvals` has a decision for every call of
        ``result.pending_approvals``, by id: approved calls run, refused ones are answered to the
        model as refused. Usage and cost continue from the saved ones. ``history`` and the
        prompt do not apply (the state holds the transcript); ``deps``, ``settings`` and
        ``limits`` do.
        """
        from ._deferred import Resumed, SavedRun  # deferred: see the imports
        from ._loop.loop import run_loop
        from ._loop.plan import RunArgs

        if options.get("history") is not None:
            raise UsageError("resume takes its transcript from the state: no history=")
        resumed = Resumed(SavedRun.from_json(state_json), dict(approvals))
        resumed.check()
        args = dataclasses.replace(RunArgs.of(None, options), resumed=resumed)
        return await run_loop(self._plan, args, None)

    def resume_sync(
        self,
        state_json: str | bytes,
        approvals: Mapping[str, bool],
        **options: Unpack[RunOptions],
    ) -> RunResult[OutputT]:
        """`resume` for scripts: starts an event loop, so it cannot be called from inside one."""
        return _run_blocking(partial(self.resume, state_json, approvals, **options))

    def run_sync(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> RunResult[OutputT]:
        """`run` for scripts: starts an event loop, so it cannot be called from inside one."""
        return _run_blocking(partial(self.run, prompt, **options))

    def run_stream(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> RunStream[OutputT]:
        """Stream a run: ``async with agent.run_stream(...) as stream: async for event in stream``.

        Each event is a `RunEvent`. After the iteration, ``stream.result`` is the `RunResult`.
        """
        from ._loop.plan import RunArgs
        from ._loop.run_stream import RunStream

        return RunStream(self._plan, RunArgs.of(prompt, options))

    def run_stream_sync(
        self,
        prompt: Prompt | None = None,
        *,
        on_event: Callable[[RunEvent], object],
        **options: Unpack[RunOptions],
    ) -> RunResult[OutputT]:
        """`run_stream` for scripts: calls ``on_event(event)`` for each event, returns the result.

        An exception from `on_event` cancels the run (as leaving ``async with`` early does).
        """

        async def consume() -> RunResult[OutputT]:
            async with self.run_stream(prompt, **options) as stream:
                async for event in stream:
                    on_event(event)
            return stream.result

        return _run_blocking(consume)


def _run_blocking(call: Callable[[], Awaitable[Any]]) -> Any:
    import anyio  # deferred: see the imports

    try:
        return anyio.run(call)
    except RuntimeError as exc:
        if "already running" in str(exc).lower():
            raise UsageError(
                "run_sync was called inside a running event loop; use `await agent.run(...)`"
            ) from exc
        raise


_OPTIONS = tuple(inspect.signature(Agent).parameters)
_KEPT = tuple(name for name in _OPTIONS if name not in ("model", "max_turns"))


def _handoffs(items: Sequence[Agent[Any] | Handoff]) -> tuple[Handoff, ...]:
    from ._handoff import handoff  # deferred: see the imports

    return tuple(item if not isinstance(item, Agent) else handoff(item) for item in items)


def _checked_toolsets(toolsets: Sequence[Toolset]) -> tuple[Toolset, ...]:
    from ._toolsets import Toolset  # deferred: see the imports

    for item in toolsets:
        if not isinstance(item, Toolset):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(
                f"toolsets takes Toolset objects (such as agentloop.mcp.MCPServer), got "
                f"{type(item).__name__}; plain functions and Tool objects go in tools="
            )
    return tuple(toolsets)


def _tools_by_name(tools: Sequence[Tool], output_tool: bool) -> dict[str, Tool]:
    """The tools by name. With `output_tool` (output_mode "tool" asked for structured output),
    the output tool's name is taken; else the run checks it once the mode is known."""
    from ._output import OUTPUT_TOOL_NAME  # deferred: see the imports

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
