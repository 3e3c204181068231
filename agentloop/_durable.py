"""Durable runs: the seam between the agent loop and a workflow engine (DBOS, later others).

A durable run is an ordinary run whose side effects are *steps*: each model request and each tool
call is handed to the engine, which runs it once, records its JSON result, and on a replay (the
run's process died and a new one resumes the workflow) returns the recorded result instead of
running it again. Nothing in the loop changes: `durable_agent` returns a copy of the agent whose
model and tools go through the engine (`Agent.replace`).

Steps of one run are sequential, except the tool calls of one turn, which start in call order
on asyncio (anyio's capacity limiter is first come, first served) and may finish in any order.

- A model step returns the `ModelResponse` as JSON; the loop gets it back, parsed, whether it was
  just paid for or replayed. Streaming is not durable (`DurableModel.stream` raises).
- A tool step returns the tool's outcome as JSON: its result as the text the model will read, a
  retry message (`ToolRetry`), or an error. A tool's timeout is applied inside the step, so that
  a timed-out call is recorded as such and replayed as such.

The code outside steps runs again on every replay, so it must be deterministic: instructions,
output validators, approvers and history policies should depend only on the run's inputs (the
model's answers and the tool results are replayed). Step names say what ran
(``model`` / ``<model name>``, ``tool`` / ``<tool name>#<tool call id>``), so an engine that
checks names on replay catches a workflow whose code changed under it, or parallel tool calls
that started in another order.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from ._agent import Agent
from ._errors import ToolRetry, UsageError
from ._loop.dispatch import call_tool, tool_result_text
from ._messages import ModelRequest, ModelResponse
from ._tool_return import Image, ToolReturn, split_return
from ._tools import Tool

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ._context import RunContext
    from ._wire.models import Model, ModelStream
    from ._wire.profiles import ModelProfile

__all__ = [
    "DurableEngine",
    "DurableModel",
    "StepKind",
    "ToolStepError",
    "durable_agent",
    "durable_tool",
    "response_from_json",
    "response_to_json",
]

OutputT = TypeVar("OutputT")
StepKind = Literal["model", "tool"]
JSON = Any
_CTX = "_agentloop_durable_ctx"


class DurableEngine(Protocol):
    """What a workflow engine provides: run `call` as a named step, once.

    Outside a workflow an engine should simply await `call`. The value `call` returns is JSON
    (dicts, lists, strings, numbers, booleans, None); a replay must return an equal value.
    """

    async def step(
        self, kind: StepKind, name: str, call: Callable[[], Awaitable[JSON]]
    ) -> JSON: ...


class ToolStepError(Exception):
    """A durable tool failed; the message is the original ``Type: message``, as recorded."""


@cache
def _response_adapter() -> TypeAdapter[ModelResponse]:
    from pydantic import TypeAdapter

    return TypeAdapter(ModelResponse)


def response_to_json(response: ModelResponse) -> JSON:
    """A `ModelResponse` as JSON values (the inverse of `response_from_json`)."""
    return _response_adapter().dump_python(response, mode="json")


def response_from_json(data: JSON) -> ModelResponse:
    return _response_adapter().validate_python(data)


class DurableModel:
    """A `Model` whose requests are engine steps. Everything else is the wrapped model's."""

    def __init__(self, model: Model, engine: DurableEngine) -> None:
        self.wrapped = model
        self.engine = engine

    def __repr__(self) -> str:
        return f"DurableModel({self.wrapped!r})"

    @property
    def name(self) -> str:
        return self.wrapped.name

    @property
    def profile(self) -> ModelProfile:
        return self.wrapped.profile

    @property
    def system(self) -> str:
        return self.wrapped.system

    async def request(self, request: ModelRequest) -> ModelResponse:
        async def call() -> JSON:
            return response_to_json(await self.wrapped.request(request))

        return response_from_json(await self.engine.step("model", self.wrapped.name, call))

    def stream(self, request: ModelRequest) -> AbstractAsyncContextManager[ModelStream]:
        raise UsageError("durable runs do not stream: use `run`, not `run_stream`")

    async def aclose(self) -> None:
        await self.wrapped.aclose()


async def _tool_outcome(tool: Tool, arguments: dict[str, Any], ctx: RunContext[Any]) -> JSON:
    """Run the tool: ``{"ok": text}`` (with ``"images"`` if it returned any), ``{"retry":
    message}`` or ``{"error": "Type: message"}``."""
    try:
        value, timed_out = await call_tool(tool, arguments, ctx)
        if timed_out:
            return {"error": f"TimeoutError: the tool timed out after {tool.timeout} s"}
    except ToolRetry as signal:
        return {"retry": signal.message}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    value, images = split_return(value)
    outcome: dict[str, Any] = {"ok": tool_result_text(value, sys.maxsize)}
    if images:
        outcome["images"] = [[i.media_type, base64.b64encode(i.data).decode()] for i in images]
    return outcome


def _replayed(outcome: dict[str, Any]) -> str | ToolReturn:
    """A tool step's recorded outcome as the tool's value again."""
    images = outcome.get("images")
    if not images:
        return outcome["ok"]
    return ToolReturn(outcome["ok"], tuple(Image(base64.b64decode(d), t) for t, d in images))


def durable_tool(tool: Tool, engine: DurableEngine) -> Tool:
    """A copy of `tool` whose calls are engine steps (its timeout moves inside the step)."""
    context_name = tool.context_param or _CTX

    async def run(**kwargs: Any) -> str | ToolReturn:
        ctx: RunContext[Any] = kwargs[context_name] if tool.context_param else kwargs.pop(_CTX)
        arguments = {k: v for k, v in kwargs.items() if k != tool.context_param}

        async def call() -> JSON:
            return await _tool_outcome(tool, arguments, ctx)

        name = f"{tool.name}#{ctx.tool_call_id}" if ctx.tool_call_id else tool.name
        outcome: dict[str, Any] = await engine.step("tool", name, call)
        if "retry" in outcome:
            raise ToolRetry(outcome["retry"])
        if "error" in outcome:
            raise ToolStepError(outcome["error"])
        return _replayed(outcome)

    run.__name__ = tool.name
    return tool.replace(function=run, context_param=context_name, timeout=None)


def durable_agent(agent: Agent[OutputT], engine: DurableEngine) -> Agent[OutputT]:
    """A copy of `agent` whose model requests and tool calls are steps of `engine`."""
    if isinstance(agent.model, DurableModel):
        raise UsageError("this agent is already durable")
    tools = [durable_tool(t, engine) for t in agent.tools]
    return agent.replace(model=DurableModel(agent.model, engine), tools=tools)
