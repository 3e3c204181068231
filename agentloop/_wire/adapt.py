"""The answer as the loop wants it, from what a server with quirks sent.

Two adaptations, each only where the model's profile says the server needs it: text the server
HTML-escaped (``&#34;`` for ``"``) is unescaped, and in prompted tool mode the calls written as
JSON in the reply's text become tool calls (`read_prompted_calls`). A stream is wrapped only when
its request could need either.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .._errors import IncompleteStreamError, UsageError
from .._messages import AssistantMessage, ModelRequest, ModelResponse, RequestUsage
from .profiles import ModelProfile

# The events, `html` and the prompted-tools reader load with the first answer that needs them:
# `compatible` imports this module, and `import agentloop` imports `compatible`.
if TYPE_CHECKING:
    from .._events import StreamDelta
    from .model_stream import HTTPModelStream
    from .models import DeltaHandler

__all__ = ["AdaptedStream", "adapt_response", "adapt_stream"]


def _unescape(message: AssistantMessage) -> AssistantMessage:
    if not message.content or "&" not in message.content:
        return message
    import html  # deferred: see the imports

    return dataclasses.replace(message, content=html.unescape(message.content))


_ENTITY_START = r"&[#a-zA-Z0-9]{0,10}$"  # compiled on first use (`re` caches it)


def _split_entity(text: str) -> tuple[str, str]:
    """(what can be unescaped now, the start of an entity that a later delta may finish)."""
    cut = re.search(_ENTITY_START, text)
    return (text[: cut.start()], text[cut.start() :]) if cut else (text, "")


def _unescaped_text(text: str) -> StreamDelta:
    import html  # deferred: see the imports

    from .._events import TextDelta

    return TextDelta(html.unescape(text))


def _reply_deltas(message: AssistantMessage) -> list[StreamDelta]:
    from .._events import TextDelta, ToolArgumentsDelta, ToolCallStarted  # deferred: see imports

    deltas: list[StreamDelta] = [TextDelta(message.content)] if message.content else []
    for index, call in enumerate(message.tool_calls):
        deltas.append(ToolCallStarted(index, call.id, call.name))
        deltas.append(ToolArgumentsDelta(index, call.id, call.arguments))
    return deltas


def _offers_calls(request: ModelRequest) -> bool:
    """A prompted-tools request whose reply may hold calls (``tool_choice: "none"`` offers no
    tool: its reply is an answer, whatever its text looks like)."""
    return request.settings is None or request.settings.tool_choice != "none"


def adapt_response(
    response: ModelResponse, request: ModelRequest, profile: ModelProfile
) -> ModelResponse:
    """`response` with escaped text decoded and prompted tool calls read, where `profile` says."""
    from .prompted import read_prompted_answer, read_prompted_calls  # deferred: see the imports

    message = response.message
    if profile.escaped_text:
        message = _unescape(message)
    if request.tools and profile.tool_mode == "prompted":
        if _offers_calls(request):
            message = read_prompted_calls(message, request.tools)
        if request.response_format is None:
            message = read_prompted_answer(message)
    if message is response.message:
        return response
    called = bool(message.tool_calls) and not response.message.tool_calls
    finish = "tool_calls" if called else response.finish_reason
    return response.replace(message=message, finish_reason=finish)


class AdaptedStream:
    """A model stream whose text deltas and final answer are adapted as `adapt_response` says.

    - `before` runs first (it may teach the model something: the body is built after it).
    - `fetch` gets the whole answer of a plain request: used instead of a stream when the
      profile says the server streams no tool calls (`ModelProfile.stream_tools`), and after a
      stream with tools that came back empty when `on_empty` says the model learned just that.
    """

    def __init__(
        self,
        open_stream: Callable[[], HTTPModelStream],
        request: ModelRequest,
        profile: Callable[[], ModelProfile],
        *,
        before: Callable[[], Awaitable[None]] | None = None,
        fetch: Callable[[], Awaitable[ModelResponse]] | None = None,
        on_empty: Callable[[], bool] | None = None,
    ) -> None:
        self._open = open_stream
        self._inner: HTTPModelStream | None = None
        self._request = request
        self._profile = profile
        self._before = before
        self._fetch = fetch
        self._on_empty = on_empty
        self._held: deque[StreamDelta] | None = None
        self._adapted: ModelResponse | None = None
        self._whole = False
        self._tail = ""  # the start of an HTML entity that the next delta may finish

    @property
    def inner(self) -> HTTPModelStream:
        if self._inner is None:
            raise UsageError("the stream is not open: use it as `async with model.stream(...)`")
        return self._inner

    async def __aenter__(self) -> Self:
        if self._before is not None:
            await self._before()
        if self._fetch is not None and self._request.tools and not self._profile().stream_tools:
            await self._take_whole(self._fetch)
            return self
        self._inner = self._open()
        await self._inner.__aenter__()
        return self

    async def _take_whole(self, fetch: Callable[[], Awaitable[ModelResponse]]) -> None:
        from .model_stream import response_deltas

        self._whole = True
        self._adapted = await fetch()
        self._held = deque(response_deltas(self._adapted))

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
        if self._held is not None:
            if not self._held:
                raise StopAsyncIteration
            return self._held.popleft()
        profile = self._profile()
        if self._request.tools and profile.tool_mode == "prompted":
            return await self._next_prompted()
        while True:
            try:
                delta = await self.inner.__anext__()
            except StopAsyncIteration:
                if self._tail:  # an entity cut at the very end: as it is
                    text, self._tail = self._tail, ""
                    return _unescaped_text(text)
                if not await self._refetched_empty(self.inner.response):
                    raise
                return await self.__anext__()
            except IncompleteStreamError as error:  # nothing at all, not even [DONE]
                partial = error.partial
                if not isinstance(partial, ModelResponse) or self._tail:
                    raise
                if not await self._refetched_empty(partial):
                    raise
                return await self.__anext__()
            if not profile.escaped_text:
                return delta
            unescaped = self._unescaped(delta)
            if unescaped is not None:
                return unescaped

    def _unescaped(self, delta: StreamDelta) -> StreamDelta | None:
        """`delta` with its text unescaped; None while all of it is an entity's start, held back
        for the next delta to finish."""
        from .._events import TextDelta  # deferred: see the imports

        if not isinstance(delta, TextDelta):
            return delta
        text, self._tail = _split_entity(self._tail + delta.text)
        return _unescaped_text(text) if text else None

    async def _refetched_empty(self, streamed: ModelResponse) -> bool:
        """After a stream with tools that said nothing at all (`streamed`: what it held, ended
        or cut off): if the model takes that as the server's quirk, the whole answer of a plain
        request replaces it."""
        message = streamed.message
        empty = not message.content and not message.tool_calls and not message.refusal
        if not (empty and self._request.tools and self._fetch and self._on_empty):
            return False
        if not self._on_empty():
            return False
        await self._take_whole(self._fetch)
        return True

    async def _next_prompted(self) -> StreamDelta:
        """Prompted tools: the reply's text is held back until its end, then given as the calls
        or the answer it holds (its JSON is not for the reader)."""
        from .._events import TextDelta  # deferred: see the imports

        while self._held is None:
            try:
                delta = await self.inner.__anext__()
            except StopAsyncIteration:
                self._held = deque(_reply_deltas(self.response.message))
                break
            if not isinstance(delta, TextDelta):
                return delta
        return await self.__anext__()

    @property
    def response(self) -> ModelResponse:
        """The adapted answer, built once (prompted calls get their ids here)."""
        if self._adapted is None:
            self._adapted = adapt_response(self.inner.response, self._request, self._profile())
        return self._adapted

    @property
    def usage(self) -> RequestUsage | None:
        if self._whole:
            return self.response.usage
        return self.inner.usage

    async def deliver(self, on_delta: DeltaHandler) -> ModelResponse:
        """Every delta to `on_delta`, under the HTTP stream's one deadline scope."""
        with self.deadline_scope():
            async for delta in self:
                await on_delta(delta)
        return self.response

    @contextmanager
    def deadline_scope(self) -> Generator[None]:
        if self._whole or self._inner is None:
            yield
            return
        with self.inner.deadline_scope():
            yield

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def adapt_stream(
    open_stream: Callable[[], HTTPModelStream],
    request: ModelRequest,
    profile: Callable[[], ModelProfile],
    **hooks: Any,
) -> HTTPModelStream | AdaptedStream:
    """The stream itself when nothing could need adapting, else an `AdaptedStream` around it
    (`hooks`: its `before`, `fetch` and `on_empty`)."""
    if not request.tools and not profile().escaped_text:
        return open_stream()
    return AdaptedStream(open_stream, request, profile, **hooks)
