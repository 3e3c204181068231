"""Events of a streamed run, and the sink through which the loop emits them.

A model's stream yields `StreamDelta`s: `TextDelta`, `RefusalDelta`, `ReasoningDelta`,
`ToolCallStarted` and `ToolArgumentsDelta`. A streamed run passes them on as they come and adds
`ToolCallFinished`, `PartialOutput`, `TurnFinished` and `RunFinished`: a `RunEvent` is any of
the nine, so ``match event:`` over them is checked for exhaustiveness by a type checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ._messages import ModelRequest, ModelResponse, ToolCall, ToolMessage

if TYPE_CHECKING:
    from ._context import RunContext
    from ._loop.output_step import OutputStep
    from ._result import RequestStats, RunResult
    from ._wire.models import Model

__all__ = [
    "EventSink",
    "PartialOutput",
    "ReasoningDelta",
    "RefusalDelta",
    "RunEvent",
    "RunFinished",
    "StreamDelta",
    "TextDelta",
    "ToolArgumentsDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnFinished",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A fragment of a refusal."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of the model's reasoning."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool call began; `index` is its position in the final ``tool_calls``."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgumentsDelta:
    """A fragment of the raw JSON arguments of the call at `index`."""

    index: int
    id: str
    text: str


StreamDelta: TypeAlias = (
    TextDelta | RefusalDelta | ReasoningDelta | ToolCallStarted | ToolArgumentsDelta
)


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool call ended: `result` is the text sent to the model; `is_error` if it failed.
    `agent` names the agent whose model made the call."""

    id: str
    name: str
    result: str
    is_error: bool
    duration: float
    agent: str = "agent"


@dataclass(frozen=True, slots=True)
class PartialOutput:
    """The structured output so far: a partially validated value (complete fields only)."""

    value: Any


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """One request finished; `stats` holds its tokens and speed figures. `agent` names the agent
    that made it: the deltas before this event are that agent's (a handoff changes it)."""

    stats: RequestStats
    response: ModelResponse
    agent: str = "agent"


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run finished; `result` is the same `RunResult` that `Agent.run` returns."""

    result: RunResult[Any]


RunEvent: TypeAlias = StreamDelta | ToolCallFinished | PartialOutput | TurnFinished | RunFinished
"""What iterating a `RunStream` yields."""


class EventSink(Protocol):
    """What the loop calls when a run is streamed."""

    def attach(self, ctx: RunContext[Any]) -> None: ...

    async def stream_request(
        self, model: Model, request: ModelRequest, step: OutputStep
    ) -> ModelResponse:
        """Stream `request`; `step` is the output step of the agent answering now."""
        ...

    async def on_turn(self, stats: RequestStats, response: ModelResponse) -> None:
        """The request `stream_request` made is counted: its figures, as the result has them."""
        ...

    async def on_tool(self, call: ToolCall, answer: ToolMessage, duration: float) -> None: ...
