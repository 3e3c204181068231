"""A streamed answer: server-sent events in, `StreamDelta`s out, the whole answer at the end.

`HTTPModelStream` is an async context manager that owns the HTTP response: entering sends the
request (with retries, up to the response headers), iterating reads the event stream under the
request's overall deadline, leaving (or being cancelled) closes the response at once. No cancel
scope is held across a yield: each read gets its own scope ending at the same deadline, unless
the deltas are taken with `deliver` (the streamed run does), which holds one scope around the
whole iteration (about a quarter of the client CPU per chunk less).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

import anyio

from .._errors import APIError, APIStatusError, APITimeoutError, ProtocolError, UsageError
from .._events import (
    ReasoningDelta,
    RefusalDelta,
    StreamDelta,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStarted,
)
from .._messages import ModelResponse, RequestUsage
from .chunks import StreamAccumulator
from .http import Endpoint, Relearn, transport_error
from .scrub import scrub_error
from .slots import Slots, note_waits
from .sse import SSEDecoder
from .transport import Reply

if TYPE_CHECKING:
    from .models import DeltaHandler

__all__ = ["HTTPModelStream", "response_deltas"]

_MAX_EVENT = 16 * 1024 * 1024
_TAIL_BYTES = 4096
_TAIL_SECONDS = 0.25
"""What is read after ``[DONE]`` before the connection is given up rather than kept."""


def response_deltas(response: ModelResponse) -> list[StreamDelta]:
    """The deltas a stream would have given for a whole answer (a server that ignored
    ``stream: true`` and sent JSON)."""
    message = response.message
    deltas: list[StreamDelta] = []
    for key in ("reasoning", "reasoning_content"):
        text = message.reasoning.get(key)
        if isinstance(text, str) and text:
            deltas.append(ReasoningDelta(text))
    if message.content:
        deltas.append(TextDelta(message.content))
    if message.refusal:
        deltas.append(RefusalDelta(message.refusal))
    for index, call in enumerate(message.tool_calls):
        deltas.append(ToolCallStarted(index, call.id, call.name))
        if call.arguments:
            deltas.append(ToolArgumentsDelta(index, call.id, call.arguments))
    return deltas


class HTTPModelStream:
    """One streamed request: ``async with`` opens it, iteration yields `StreamDelta`s.

    `response` is the final `ModelResponse` once the iteration ended. Leaving the ``async with``
    block early (or being cancelled) closes the HTTP response at once.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        content: bytes,
        headers: Mapping[str, str],
        deadline: float | None,
        secret: str,
        relearn: Relearn | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._content = content
        self._relearn = relearn
        self._headers = headers
        self._deadline = deadline
        self._secret = secret
        self._http: Reply | None = None
        self._errors: tuple[type[BaseException], ...] = ()
        self._end = 0.0
        self._started = 0.0
        self._attempt_start = 0.0
        self._retries = 0
        self._ttft: float | None = None
        self._pending: deque[StreamDelta] = deque()
        self._decoder = SSEDecoder(max_event_size=_MAX_EVENT)
        self._accumulator = StreamAccumulator()
        self._final: ModelResponse | None = None
        self._ended = False
        self._slot: Slots | None = None
        self._booked = 0  # the tokens its rate limit booked for it
        self._waits = [0.0, 0.0]  # seconds: for a connection, for the rate limit's turn
        self._held = False  # whether an attempt held a connection (a retry goes first)
        self._outer_scope = False

    async def __aenter__(self) -> Self:
        self._started = anyio.current_time()
        endpoint = self._endpoint

        rate = endpoint.rate_limit
        booked = rate.estimate(self._content) if rate is not None else 0

        async def attempt() -> Reply | ModelResponse:
            if rate is not None:  # its turn first: waiting for it holds no connection
                self._waits[1] += await rate.wait(booked)
            await self._take_slot()
            try:
                self._attempt_start = anyio.current_time()
                response, end = await endpoint.open(
                    self._content, self._headers, self._deadline, self._secret
                )
                self._end = end
                kind = response.headers.get("content-type", "").lower()
                if not kind or kind.startswith("text/event-stream"):
                    return response  # the slot is held until the stream is closed
                raw = await endpoint.read_body(response, end, self._secret)
            except BaseException as error:
                self._release_slot()
                if isinstance(error, APITimeoutError):
                    note_waits(error, *self._waits)
                raise
            self._release_slot()
            if kind.startswith("application/json"):
                # The server ignored `stream: true` and answered with a whole completion.
                return endpoint.parse_body(raw)
            snippet = raw[:200].decode("utf-8", "replace")
            raise ProtocolError(f"expected an event stream, got {kind!r}: {snippet!r}")

        opened, self._retries = await endpoint.retrying(attempt, self._secret, self._swap)
        self._booked = booked
        if isinstance(opened, ModelResponse):
            self._pending.extend(response_deltas(opened))
            self._finish(opened)
        else:
            self._http = opened
            self._errors = endpoint.transports.get().errors
        return self

    def _swap(self, error: APIStatusError) -> bool:
        fresh = self._relearn(error) if self._relearn is not None else None
        if fresh is not None:
            self._content = fresh
        return fresh is not None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP response (idempotent)."""
        self._ended = True
        reply, self._http = self._http, None
        if reply is not None:
            await reply.aclose()
        self._release_slot()

    async def _take_slot(self) -> None:
        here = self._endpoint.transports.here()
        slots = here.limiter
        if slots is not None:
            if not slots.take_nowait():  # a free one is taken without a checkpoint
                self._waits[0] += await slots.take(here.clock, retry=self._held)
            self._slot, self._held = slots, True

    def _release_slot(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()

    async def deliver(self, on_delta: DeltaHandler) -> ModelResponse:
        """Every delta to `on_delta` under one deadline scope (see `models.deliver`)."""
        with self.deadline_scope():
            async for delta in self:
                await on_delta(delta)
        return self.response

    @contextlib.contextmanager
    def deadline_scope(self) -> Generator[None]:
        """Hold one cancel scope at the attempt's deadline while this task iterates (with no
        yield to other code inside); the reads then skip their own."""
        if self._http is None or self._outer_scope:
            yield
            return
        scope = anyio.CancelScope(deadline=self._end)
        self._outer_scope = True
        try:
            with scope:
                yield
        finally:
            self._outer_scope = False
        if scope.cancelled_caught:
            raise self._timeout_error() from TimeoutError()

    def _timeout_error(self) -> APITimeoutError:
        limit = self._endpoint.deadline if self._deadline is None else self._deadline
        error = APITimeoutError(f"the stream did not end within its {limit:g} s deadline")
        note_waits(error, *self._waits)
        return error

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamDelta:
        while not self._pending:
            if self._final is not None or self._ended:
                raise StopAsyncIteration
            await self._pump()
        if self._ttft is None:
            self._ttft = anyio.current_time() - self._attempt_start
        return self._pending.popleft()

    @property
    def response(self) -> ModelResponse:
        """The final answer; only once the iteration has ended."""
        if self._final is None:
            raise UsageError("the stream has not ended yet: iterate it to its end first")
        return self._final

    @property
    def usage(self) -> RequestUsage | None:
        """The usage reported so far (streams report it at their end), else None."""
        return self._final.usage if self._final is not None else None

    async def _pump(self) -> None:
        try:
            chunk = await self._next_chunk()
            events = self._decoder.close() if chunk is None else self._decoder.feed(chunk)
            for event in events:
                self._pending.extend(self._accumulator.feed_event(event))
            if chunk is None or self._accumulator.done:
                self._finish(self._accumulator.response())
                if chunk is not None:
                    await self._read_to_end()
                await self.aclose()
        except APIError as error:
            scrub_error(error, self._secret)
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()
            raise

    async def _read_to_end(self) -> None:
        """After ``[DONE]``: the rest of the body, so that the connection goes back to the
        pool. A server that sends more than a little, or holds the body open, loses it
        instead (closing drops it); the answer is already whole either way."""
        reply, extra = self._http, 0
        if reply is None:
            return
        with anyio.move_on_after(_TAIL_SECONDS), contextlib.suppress(*self._errors):
            while (chunk := await reply.next_chunk()) is not None:
                extra += len(chunk)
                if extra > _TAIL_BYTES:
                    return

    async def _next_chunk(self) -> bytes | None:
        reply = self._http
        if reply is None:
            return None
        try:
            if self._outer_scope:
                return await reply.next_chunk()
            with anyio.CancelScope(deadline=self._end):
                return await reply.next_chunk()
        except self._errors as exc:
            raise transport_error(exc, "the stream broke", [self._secret]) from exc
        raise self._timeout_error() from TimeoutError()  # only the deadline ends the scope

    def _finish(self, response: ModelResponse) -> None:
        now = anyio.current_time()
        ttft = self._ttft
        if ttft is None and self._pending:
            ttft = now - self._attempt_start
        final = response.replace(
            retries=self._retries,
            time_to_first_token=ttft,
            latency=now - self._started,
            queue_wait=self._waits[0],
            rate_wait=self._waits[1],
        )
        self._final = self._endpoint.finished(final, stream=True)
        rate = self._endpoint.rate_limit
        if rate is not None:
            rate.settle(self._booked, response.usage)
