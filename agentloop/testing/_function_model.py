"""A function model: a callback from the messages and tools to a reply, in process."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._loop.guard import estimate_tokens
from .._messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    RequestUsage,
    ToolCall,
    ToolMessage,
)
from .._wire.profiles import OPENAI_PROFILE, ModelProfile

if TYPE_CHECKING:
    from .._events import StreamDelta

__all__ = ["FunctionModel", "RequestInfo"]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the callback sees besides the messages: the whole request."""

    request: ModelRequest

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.request.tools]


Reply = str | AssistantMessage | ModelResponse
ReplyFunction = Callable[[list[Message], RequestInfo], Reply | Awaitable[Reply]]


class FunctionModel:
    """A model whose answers come from `function(messages, info)`.

    The function returns a string (text), an `AssistantMessage` (for tool calls), or a whole
    `ModelResponse`. Token counts are estimated (about four characters a token).
    """

    system = "function"

    def __init__(
        self,
        function: ReplyFunction,
        *,
        name: str = "function-model",
        profile: ModelProfile = OPENAI_PROFILE,
    ) -> None:
        self.function = function
        self.name = name
        self.profile = profile
        self.calls: int = 0

    def __repr__(self) -> str:
        return f"FunctionModel(name={self.name!r})"

    async def request(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        self.calls += 1
        value = self.function(list(request.messages), RequestInfo(request))
        if inspect.isawaitable(value):
            value = await value
        response = _response(value, request, self.name)
        latency = time.perf_counter() - started
        return response.replace(latency=latency, time_to_first_token=latency)

    def stream(self, request: ModelRequest) -> _ReplayContext:
        return _ReplayContext(self, request)

    async def aclose(self) -> None:
        return None


def _response(value: Reply, request: ModelRequest, name: str) -> ModelResponse:
    if isinstance(value, ModelResponse):
        return value
    message = AssistantMessage(content=value) if isinstance(value, str) else value
    text = (message.content or "") + "".join(c.arguments for c in message.tool_calls)
    usage = RequestUsage(estimate_tokens(request), max(1, len(text) // 4))
    finish = "tool_calls" if message.tool_calls else "stop"
    return ModelResponse(message, usage, finish, finish, name, "function-response")


class _ReplayContext:
    def __init__(self, model: FunctionModel, request: ModelRequest) -> None:
        self._model = model
        self._request = request

    async def __aenter__(self) -> _ReplayStream:
        return _ReplayStream(await self._model.request(self._request))

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _ReplayStream:
    """Streams a finished response as deltas: text in small pieces, then each tool call."""

    def __init__(self, response: ModelResponse) -> None:
        self.response = response
        self.usage: RequestUsage | None = response.usage
        self._deltas = iter(_deltas(response.message))

    def __aiter__(self) -> _ReplayStream:
        return self

    async def __anext__(self) -> StreamDelta:
        try:
            return next(self._deltas)
        except StopIteration:
            raise StopAsyncIteration from None


def _deltas(message: AssistantMessage) -> list[StreamDelta]:
    from .._events import RefusalDelta, TextDelta, ToolArgumentsDelta, ToolCallStarted

    deltas: list[StreamDelta] = [TextDelta(p) for p in _pieces(message.content or "")]
    deltas += [RefusalDelta(p) for p in _pieces(message.refusal or "")]
    for index, call in enumerate(message.tool_calls):
        deltas.append(ToolCallStarted(index, call.id, call.name))
        deltas += [ToolArgumentsDelta(index, call.id, p) for p in _pieces(call.arguments)]
    return deltas


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def call(
    name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None
) -> ToolCall:
    """A `ToolCall` for function models: ``calls(call("add", {"a": 1}))``."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(id or f"call_{name}", name, args)


def calls(*items: ToolCall) -> AssistantMessage:
    """An assistant turn that makes these tool calls, for a function model to return."""
    return AssistantMessage(tool_calls=tuple(items))


def last_tool_results(messages: Sequence[Message]) -> list[str]:
    """The contents of the tool messages after the last assistant turn."""
    results: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        assert isinstance(message, ToolMessage)
        results.append(message.content)
    return results[::-1]
