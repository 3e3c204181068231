"""What a run needs from its agent, built once: the `RunPlan`; and what one run is given: `RunArgs`.

An `Agent` is configuration as its user wrote it. Its plan is that configuration resolved for the
loop: the model object, the tools by name and their definitions, the dispatch options, and the
output step for each model profile (built on first use, since a model may learn its profile during
a run). The loop's stages read the plan and never the agent, so no stage imports `Agent`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from .._history_policy import HistoryPolicy
from .._limits import Limits
from .._messages import Message, ToolDefinition
from .._output import OutputSpec
from .._settings import ModelSettings
from .dispatch import DispatchConfig

if TYPE_CHECKING:
    from .._context import RunContext
    from .._deferred import Resumed
    from .._handoff import HandoffPlan
    from .._tools import Tool
    from .._toolsets import Toolset
    from .._wire.models import Model
    from .._wire.profiles import ModelProfile, OutputMode
    from .output_step import OutputStep

__all__ = ["Instructions", "OutputPlan", "Prompt", "RunArgs", "RunOptions", "RunPlan"]

Instructions = str | Callable[["RunContext[Any]"], str | Awaitable[str]]
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


class RunOptions(TypedDict, total=False):
    """The keyword arguments of every way to run an agent (`Agent.run`, `run_sync`, ...).

    - `history`: earlier messages (a previous `RunResult.messages`); the prompt goes after them.
    - `deps`: any object, handed to tools and instructions as ``RunContext.deps``.
    - `settings`: `ModelSettings` over the agent's, field by field.
    - `limits`: this run's `Limits` instead of the agent's.
    """

    history: Sequence[Message] | None
    deps: Any
    settings: ModelSettings | None
    limits: Limits | None


@dataclass(frozen=True, slots=True)
class RunArgs:
    """One run's arguments, as one value: the prompt and the `RunOptions`."""

    prompt: Prompt | None = None
    history: Sequence[Message] | None = None
    deps: Any = None
    settings: ModelSettings | None = None
    limits: Limits | None = None
    resumed: Resumed | None = None  # `Agent.resume`: the saved run and the decisions

    @classmethod
    def of(cls, prompt: Prompt | None, options: RunOptions) -> RunArgs:
        return cls(prompt, **options)


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """What the output step is built from (one `OutputStep` per model profile)."""

    spec: OutputSpec
    mode: OutputMode | None
    strict: bool | None
    validators: tuple[Callable[..., Any], ...]
    retries: int


@dataclass(frozen=True, slots=True, eq=False)
class RunPlan:
    """Everything a run reads from its agent. Frozen; the output steps are memoized per profile."""

    model: Model
    instructions: Instructions | None
    settings: ModelSettings
    limits: Limits
    history_policy: HistoryPolicy | None
    tool_definitions: tuple[ToolDefinition, ...]
    dispatch: DispatchConfig
    output: OutputPlan
    toolsets: tuple[Toolset, ...] = ()
    agent_name: str = "agent"
    handoffs: Mapping[str, HandoffPlan] = field(default_factory=lambda: {})
    """The handoff tools of this agent, by tool name."""
    defers_approvals: bool = False
    """``approver="defer"``: a turn with calls needing approval stops the run."""
    uses_budget: bool = False
    """Its tools include agents (`Agent.as_tool`) or handoffs: runs keep a `RunBudget`."""
    opens_toolsets: bool = False
    """It or an agent it hands off to (at any depth) has toolsets: runs hold an exit stack."""
    _steps: dict[ModelProfile, OutputStep] = field(default_factory=lambda: {}, repr=False)

    def with_tools(self, extra: Sequence[Tool]) -> RunPlan:
        """This plan with `extra` tools after the agent's (a run's toolsets; names are unique)."""
        tools = {**self.dispatch.tools, **{t.name: t for t in extra}}
        definitions = tuple(t.definition(self.output.strict) for t in extra)
        return dataclasses.replace(
            self,
            tool_definitions=(*self.tool_definitions, *definitions),
            dispatch=dataclasses.replace(self.dispatch, tools=tools),
            _steps={},
        )

    def output_step(self, profile: ModelProfile) -> OutputStep:
        """The output step for a server with `profile` (built once per profile)."""
        step = self._steps.get(profile)
        if step is None:
            from .output_step import OutputStep

            step = self._steps[profile] = OutputStep.build(self, profile)
        return step
