"""Events of a streamed run, and the sink through which the loop emits them.

Text, refusal, reasoning and tool-call deltas are the model-stream deltas themselves
(`TextDelta`, `RefusalDelta`, `ReasoningDelta`, `ToolCallStarted`, `ToolArgumentsDelta`); the
run adds `ToolCallFinished`, `PartialOutput`, `TurnFinished` and `RunFinished`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._messages import ModelRequest, ModelResponse, ToolCall, ToolMessage

if TYPE_CHECKING:
    from ._context import RunContext
    from ._result import RequestStats, RunResult

__all__ = ["EventSink", "PartialOutput", "RunFinished", "ToolCallFinished", "TurnFinished"]


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool call ended: `result` is the text sent to the model; `is_error` if it failed."""

    id: str
    name: str
    result: str
    is_error: bool
    duration: float


@dataclass(frozen=True, slots=True)
class PartialOutput:
    """The structured output so far: a partially validated value (complete fields only)."""

    value: Any


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """One request finished; `stats` holds its tokens and speed figures."""

    stats: RequestStats
    response: ModelResponse


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run finished; `result` is the same `RunResult` that `Agent.run` returns."""

    result: RunResult[Any]


class EventSink(Protocol):
    """What the loop calls when a run is streamed."""

    def attach(self, ctx: RunContext[Any]) -> None: ...

    async def stream_request(self, model: Any, request: ModelRequest) -> ModelResponse: ...

    async def on_tool(self, call: ToolCall, answer: ToolMessage, duration: float) -> None: ...
