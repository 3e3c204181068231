"""The answer as the loop wants it, from what a server with quirks sent.

Two adaptations, each only where the model's profile says the server needs it: text the server
HTML-escaped (``&#34;`` for ``"``) is unescaped, and in prompted tool mode the calls written as
JSON in the reply's text become tool calls (`read_prompted_calls`). A stream is wrapped only when
its request could need either.
"""

from __future__ import annotations

import dataclasses
import html
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ._errors import UsageError
from ._messages import AssistantMessage, ModelRequest, ModelResponse, RequestUsage
from ._profiles import ModelProfile
from ._prompted import read_prompted_answer, read_prompted_calls
from ._stream import TextDelta, ToolArgumentsDelta, ToolCallStarted

if TYPE_CHECKING:
    from ._http_stream import HTTPModelStream
    from ._stream import StreamDelta

__all__ = ["AdaptedStream", "ModelStreamContext", "adapt_response", "adapt_stream"]


def _unescape(message: AssistantMessage) -> AssistantMessage:
    if not message.content or "&" not in message.content:
        return message
    return dataclasses.replace(message, content=html.unescape(message.content))


def _reply_deltas(message: AssistantMessage) -> list[StreamDelta]:
    deltas: list[StreamDelta] = [TextDelta(message.content)] if message.content else []
    for index, call in enumerate(message.tool_calls):
        deltas.append(ToolCallStarted(index, call.id, call.name))
        deltas.append(ToolArgumentsDelta(index, call.id, call.arguments))
    return deltas


def adapt_response(
    response: ModelResponse, request: ModelRequest, profile: ModelProfile
) -> ModelResponse:
    """`response` with escaped text decoded and prompted tool calls read, where `profile` says."""
    message = response.message
    if profile.escaped_text:
        message = _unescape(message)
    if request.tools and profile.tool_mode == "prompted":
        message = read_prompted_calls(message, request.tools)
        if request.response_format is None:
            message = read_prompted_answer(message)
    if message is response.message:
        return response
    called = bool(message.tool_calls) and not response.message.tool_calls
    finish = "tool_calls" if called else response.finish_reason
    return response.replace(message=message, finish_reason=finish)


class AdaptedStream:
    """A model stream whose text deltas and final answer are adapted as `adapt_response` says."""

    def __init__(
        self,
        open_stream: Callable[[], HTTPModelStream],
        request: ModelRequest,
        profile: Callable[[], ModelProfile],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._open = open_stream
        self._inner: HTTPModelStream | None = None
        self._request = request
        self._profile = profile
        self._before = before
        self._held: deque[StreamDelta] | None = None
        self._adapted: ModelResponse | None = None

    @property
    def inner(self) -> HTTPModelStream:
        if self._inner is None:
            raise UsageError("the stream is not open: use it as `async with model.stream(...)`")
        return self._inner

    async def __aenter__(self) -> Self:
        if self._before is not None:
            await self._before()  # may teach the model something: the body is built after it
        self._inner = self._open()
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inner is not None:
            await self._inner.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamDelta:
        profile = self._profile()
        if self._request.tools and profile.tool_mode == "prompted":
            return await self._next_prompted()
        delta = await self.inner.__anext__()
        if isinstance(delta, TextDelta) and "&" in delta.text and profile.escaped_text:
            return TextDelta(html.unescape(delta.text))
        return delta

    async def _next_prompted(self) -> StreamDelta:
        """Prompted tools: the reply's text is held back until its end, then given as the calls
        or the answer it holds (its JSON is not for the reader)."""
        while self._held is None:
            try:
                delta = await self.inner.__anext__()
            except StopAsyncIteration:
                self._held = deque(_reply_deltas(self.response.message))
                break
            if not isinstance(delta, TextDelta):
                return delta
        if not self._held:
            raise StopAsyncIteration
        return self._held.popleft()

    @property
    def response(self) -> ModelResponse:
        """The adapted answer, built once (prompted calls get their ids here)."""
        if self._adapted is None:
            self._adapted = adapt_response(self.inner.response, self._request, self._profile())
        return self._adapted

    @property
    def usage(self) -> RequestUsage | None:
        return self.inner.usage

    @contextmanager
    def deadline_scope(self) -> Generator[None]:
        with self.inner.deadline_scope():
            yield

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


ModelStreamContext = Any
"""`HTTPModelStream` or `AdaptedStream`: an async context manager that is its own stream."""


def adapt_stream(
    open_stream: Callable[[], HTTPModelStream],
    request: ModelRequest,
    profile: Callable[[], ModelProfile],
    before: Callable[[], Awaitable[None]] | None = None,
) -> HTTPModelStream | AdaptedStream:
    """The stream itself when nothing could need adapting, else an `AdaptedStream` that runs
    `before` (if any), then opens it."""
    if not request.tools and not profile().escaped_text:
        return open_stream()
    return AdaptedStream(open_stream, request, profile, before)
