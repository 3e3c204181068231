"""The seam for telemetry: what the loop tells an instrumentation, which `agentloop.otel` provides.

Nothing here imports OpenTelemetry. `active` is None until ``agentloop.otel.instrument()`` sets
it; the loop, the tool dispatch and the retry loop read it once per stage and call it only when
it is set, so that a run without telemetry pays a global read per stage and nothing more.

- `run` wraps a whole run (the span ``invoke_agent``); `chat` one model request (``chat``);
  `tool` one tool call (``execute_tool``), inside whose context the tool's code runs.
- `event` notes what happened on the span that is current: a retry of a request, an output
  re-ask, a handoff, a run stopping for approvals, a tool call's approval.
- `span` is a span of agentloop's own around a block: a batch, and each of its items.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._loop.plan import RunPlan
    from ._loop.state import RunState
    from ._messages import ModelRequest, ModelResponse, ToolCall, ToolMessage
    from ._tools import Tool
    from ._wire.models import Model

__all__ = ["Telemetry", "active", "event", "span"]

Attributes = Mapping[str, str | bool | int | float]


class Telemetry(Protocol):
    """What an instrumentation does at each stage of a run."""

    def run(self, plan: RunPlan, state: RunState) -> AbstractAsyncContextManager[None]:
        """Around a run: entered before its first message is built, left with its end (or its
        error, which passes through). It reads `state`'s totals when it is left."""
        ...

    async def chat(
        self,
        model: Model,
        request: ModelRequest,
        send: Awaitable[ModelResponse],
        streamed: bool,
    ) -> ModelResponse:
        """Await `send` (the request's answer; `streamed` if it comes as a stream), around it."""
        ...

    async def tool(
        self, call: ToolCall, tool: Tool | None, answer: Callable[[], Awaitable[ToolMessage]]
    ) -> ToolMessage:
        """Run `answer` (the call's dispatch: approval, the tool, its errors), around it."""
        ...

    def event(self, name: str, attributes: Attributes) -> None:
        """Note `name` on the current span."""
        ...

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[object]:
        """A span of agentloop's own around a block (a batch, one item of a batch): current in
        the block, ended in error if an exception leaves it."""
        ...


def span(name: str, attributes: Attributes) -> AbstractContextManager[object]:
    """`Telemetry.span` if an instrumentation is active, else a context that does nothing."""
    return nullcontext() if active is None else active.span(name, attributes)


active: Telemetry | None = None
"""The instrumentation in use (``agentloop.otel.instrument()``), or None."""


def event(name: str, attributes: Attributes) -> None:
    """Note `name` on the current span, if an instrumentation is active (a rare path: retries,
    re-asks, handoffs, approvals)."""
    if active is not None:
        active.event(name, attributes)
