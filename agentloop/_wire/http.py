"""Sending a chat-completions request: retries, the overall deadline, error answers, streams.

`Endpoint` posts a JSON body to one URL through a `Transport` (aiohttp on asyncio, httpx for a
caller's client and on trio: see `agentloop._wire.transport`). Each attempt has one overall
deadline (connect, headers and the whole body or stream), so a server that only sends
keep-alive comments cannot hang a run. Failed attempts are retried by the `RetryPolicy`; once a
stream's headers have arrived nothing is retried. The libraries' exceptions never leave this
module (they become `APIConnectionError` / `APITimeoutError`, the original kept as
``__cause__``).

Timing on the `ModelResponse`: `latency` is the whole call, retries and their waits included;
`time_to_first_token` is measured from the start of the attempt that succeeded, to the first
delta of a stream, or to the complete body of a non-stream answer (whose first token cannot be
seen any sooner); `queue_wait` and `rate_wait` are the seconds spent waiting for a connection
(`slots.Slots`) and for the rate limit's turn, before the attempts' deadlines began.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .. import _telemetry
from .._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ProtocolError,
    RateLimitError,
)
from .._json import loads
from .._log import get_logger
from .._messages import ModelResponse
from .learn import about_the_request
from .rate_limit import RateLimit
from .response import parse_completion
from .retry import RetryPolicy, parse_retry_after
from .scrub import scrub_error
from .slots import note_waits
from .status import status_error
from .transport import MAX_CONNECTIONS, Reply, Transport, Transports, transport_error

if TYPE_CHECKING:
    import httpx

    from .model_stream import HTTPModelStream

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_LESSONS",
    "Endpoint",
    "Relearn",
    "scrub_error",
    "transport_error",
]

_log = get_logger()
T = TypeVar("T")
MAX_LESSONS = 10
"""Error answers one request may learn from before the next one is final (each downgrades a
feature, and there are fewer features than this)."""
Relearn = Callable[[APIStatusError], bytes | None]
"""Asked about an error answer: the request's new content when the model learned from it."""
_REDIRECTS = frozenset((301, 302, 303, 307, 308))


def _decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


class Endpoint:
    """Posts bodies to one chat-completions URL, with retries and deadlines."""

    def __init__(
        self,
        *,
        url: str,
        params: Mapping[str, str] | None,
        timeout: httpx.Timeout,
        deadline: float,
        policy: RetryPolicy,
        http_client: httpx.AsyncClient | None,
        model_name: str,
        max_connections: int | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        import httpx

        parsed = httpx.URL(url, params=params) if params else httpx.URL(url)
        self.url: str = str(parsed)  # built once, with its query, for every request
        self.host: str = parsed.host
        self.timeout = timeout
        self.deadline = deadline
        self.policy = policy
        self.transports: Transports = Transports(
            http_client, timeout, deadline, max_connections or MAX_CONNECTIONS
        )
        self.model_name = model_name
        self.rate_limit = rate_limit

    async def aclose(self) -> None:
        await self.transports.aclose()

    async def complete(
        self,
        content: bytes,
        headers: Mapping[str, str],
        *,
        deadline: float | None,
        secret: str,
        relearn: Relearn | None = None,
        retry: bool = True,
    ) -> ModelResponse:
        """Send a non-stream request and parse its answer (`retry` False: one attempt).

        `relearn` is asked about each error answer: new content means the model learned what the
        server refused, and that content is sent at once, without spending a retry.
        """
        here = self.transports.here()
        clock = here.clock
        started = clock()
        limit = self._limit(deadline)
        timed = [started]
        body = [content]
        waits = [0.0, 0.0]  # seconds: for a connection, for the rate limit's turn
        held = [False]  # whether an earlier attempt held a connection (a retry goes first)
        rate = self.rate_limit
        booked = RateLimit.estimate(content) if rate is not None else 0

        async def attempt() -> ModelResponse:
            if rate is not None:  # its turn first: waiting for it holds no connection
                waits[1] += await rate.wait(booked)
            slots = here.limiter
            if slots is not None and not slots.take_nowait():  # a free one: no checkpoint
                waits[0] += await slots.take(clock, retry=held[0])
            held[0] = True
            try:
                timed[0] = begun = clock()
                raw = await self.fetch(here.transport, body[0], headers, (begun, limit), secret)
            except APITimeoutError as error:
                note_waits(error, waits[0], waits[1])
                raise
            finally:
                if slots is not None:
                    slots.release()
            return self.parse_body(raw)

        def swap(error: APIStatusError) -> bool:
            fresh = relearn(error) if relearn is not None else None
            if fresh is not None:
                body[0] = fresh
            return fresh is not None

        result, retries = await self.retrying(attempt, secret, swap, retry=retry)
        if rate is not None:
            rate.settle(booked, result.usage)
        now = clock()
        result = result.replace(
            retries=retries,
            time_to_first_token=now - timed[0],
            latency=now - started,
            queue_wait=waits[0],
            rate_wait=waits[1],
        )
        return self.finished(result, stream=False)

    def finished(self, response: ModelResponse, *, stream: bool) -> ModelResponse:
        usage = response.usage
        _log.debug(
            "request",
            model=self.model_name,
            stream=stream,
            latency=response.latency,
            time_to_first_token=response.time_to_first_token,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            retries=response.retries,
        )
        return response

    async def retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        secret: str,
        relearn: Callable[[APIStatusError], bool] | None = None,
        *,
        retry: bool = True,
    ) -> tuple[T, int]:
        """Run `attempt` until it succeeds or its error is final; returns (result, retries).

        An error answer after which `relearn` returns True is followed by a new attempt at once,
        not counted as a retry (at most `MAX_LESSONS` times); a 5xx that is about the request
        itself is final.
        """
        retries = lessons = 0
        while True:
            try:
                return await attempt(), retries
            except APIError as error:
                scrub_error(error, secret)
                if isinstance(error, RateLimitError) and self.rate_limit is not None:
                    self._pause_everyone(error, retries)
                if isinstance(error, APIStatusError):
                    if relearn is not None and lessons < MAX_LESSONS and relearn(error):
                        lessons += 1
                        continue
                    if about_the_request(error):
                        raise
                headers = error.headers if isinstance(error, APIStatusError) else None
                delay = self.policy.delay(retries, error, headers) if retry else None
                if delay is None:
                    self._explain_final(error, headers)
                    raise
                _telemetry.event(
                    "agentloop.request_retry",
                    {"attempt": retries + 1, "error": type(error).__name__, "delay": delay},
                )
                _log.info(
                    "request_retry",
                    model=self.model_name,
                    attempt=retries + 1,
                    max_retries=self.policy.max_retries,
                    status=getattr(error, "status_code", None),
                    error=type(error).__name__,
                    delay=round(delay, 3),
                )
            await self.policy.sleep(delay)
            retries += 1

    def _saw(self, headers: Mapping[str, str]) -> None:
        """An answer's headers, for the rate limit's ``x-ratelimit-*`` budget (if it has one)."""
        if self.rate_limit is not None:
            self.rate_limit.observe(headers)

    def _pause_everyone(self, error: RateLimitError, retries: int) -> None:
        """A 429: every request sharing the rate limit waits what this one would (at most the
        longest wait the retry policy honours)."""
        assert self.rate_limit is not None
        wait = error.retry_after or self.policy.delay(retries, error, error.headers)
        if wait:
            self.rate_limit.pause(min(wait, self.policy.max_retry_after))

    def _explain_final(self, error: APIError, headers: Mapping[str, str] | None) -> None:
        """Say in a retryable error that it is final because the server asked too long a wait."""
        asked = self.policy.wait_too_long(headers)
        if asked is None or not isinstance(error, APIStatusError):
            return
        if self.policy.is_retryable(error, headers):
            self.policy.note_wait_too_long(error, asked)

    def _limit(self, deadline: float | None) -> float:
        return self.deadline if deadline is None else deadline

    async def fetch(
        self,
        transport: Transport,
        content: bytes,
        headers: Mapping[str, str],
        timing: tuple[float, float],
        secret: str,
    ) -> bytes:
        """One attempt, under one deadline (`timing`: its start on the loop's clock, and the
        seconds it may take): the whole 2xx body, or the typed error."""
        begun, limit = timing
        if transport.holds_deadline:
            return await self._fetch_held(transport, content, headers, limit, secret)
        reply: Reply | None = None
        with anyio.CancelScope(deadline=begun + limit):
            try:  # the library's calls awaited here, not in helpers: a shorter await chain
                reply = await transport.post(self.url, content, headers)
                if 200 <= reply.status < 300:
                    self._saw(reply.headers)
                    return await reply.read()
            except transport.errors as exc:
                raise self._failed(exc, reply, secret) from exc
            raise self.status_error(reply, await self._error_body(transport, reply, secret))
        raise self._no_answer(limit) if reply is None else self._cut_off(reply)

    async def _fetch_held(
        self,
        transport: Transport,
        content: bytes,
        headers: Mapping[str, str],
        limit: float,
        secret: str,
    ) -> bytes:
        """`fetch` on a transport that holds the deadline itself (its built-in `TimeoutError`)."""
        reply: Reply | None = None
        try:
            reply = await transport.post(self.url, content, headers, limit)
            raw = await reply.read()
        except transport.errors as exc:
            if type(exc) is TimeoutError:  # the deadline, not a per-phase timeout
                raise (self._no_answer(limit) if reply is None else self._cut_off(reply)) from None
            if reply is not None and not 200 <= reply.status < 300:
                raise self.status_error(reply, b"") from None  # its body could not be read
            raise self._failed(exc, reply, secret) from exc
        if 200 <= reply.status < 300:
            self._saw(reply.headers)
            return raw
        raise self.status_error(reply, raw.replace(secret.encode(), b"***") if secret else raw)

    async def open(
        self,
        content: bytes,
        headers: Mapping[str, str],
        deadline: float | None,
        secret: str,
    ) -> tuple[Reply, float]:
        """Send one attempt; returns the open 2xx reply and the attempt's deadline (a clock
        time). An error status is read, closed and raised as its typed error."""
        limit = self._limit(deadline)
        end = anyio.current_time() + limit
        transport = self.transports.get()
        with anyio.CancelScope(deadline=end):
            reply = await self._post(transport, content, headers, secret)
            if 200 <= reply.status < 300:
                self._saw(reply.headers)
                return reply, end
            raise self.status_error(reply, await self._error_body(transport, reply, secret))
        raise self._no_answer(limit)

    def _no_answer(self, limit: float) -> APITimeoutError:
        return APITimeoutError(f"no answer from {self.host} within the {limit:g} s deadline")

    @staticmethod
    def _cut_off(reply: Reply) -> APITimeoutError:
        return APITimeoutError(
            f"the answer ({reply.status}) did not arrive in full before the deadline"
        )

    async def _post(
        self, transport: Transport, content: bytes, headers: Mapping[str, str], secret: str
    ) -> Reply:
        try:
            return await transport.post(self.url, content, headers)
        except transport.errors as exc:
            raise self._failed(exc, None, secret) from exc

    def _failed(self, exc: BaseException, reply: Reply | None, secret: str) -> APIConnectionError:
        """The typed error of a library's exception, before the answer (`reply` None) or while
        reading it."""
        what = (
            "reading the answer failed" if reply is not None else f"request to {self.host} failed"
        )
        return transport_error(exc, what, [secret])

    async def _read(self, transport: Transport, reply: Reply, secret: str) -> bytes:
        try:
            return await reply.read()
        except transport.errors as exc:
            raise self._failed(exc, reply, secret) from exc

    async def _error_body(self, transport: Transport, reply: Reply, secret: str) -> bytes:
        """An error answer's body, the key taken out (empty if the body could not be read)."""
        raw = b""
        with contextlib.suppress(APIConnectionError):
            raw = await self._read(transport, reply, secret)
        return raw.replace(secret.encode(), b"***") if secret else raw

    def status_error(self, reply: Reply, raw: bytes) -> APIStatusError:
        headers = {name.lower(): value for name, value in reply.headers.items()}
        self._saw(headers)
        asked = parse_retry_after(headers)
        error = status_error(
            reply.status,
            _decode_json(raw),
            headers,
            retry_after=asked if asked is not None and asked > 0 else None,
        )
        if reply.status in _REDIRECTS:
            location = headers.get("location", "?")
            error.message = (
                f"{error.message} (redirect to {location} not followed; set base_url to the "
                "final address)"
            )
            error.args = (error.message,)
        return error

    async def read_body(self, reply: Reply, end: float, secret: str) -> bytes:
        """The whole body within the deadline; the reply is closed afterwards."""
        transport = self.transports.get()
        with anyio.CancelScope(deadline=end):
            return await self._read(transport, reply, secret)
        await reply.aclose()
        raise self._cut_off(reply)

    @staticmethod
    def parse_body(raw: bytes) -> ModelResponse:
        try:
            body = loads(raw)
        except (ValueError, RecursionError) as exc:
            snippet = raw[:200].decode("utf-8", "replace")
            raise ProtocolError(f"the answer is not JSON: {snippet!r}") from exc
        return parse_completion(body)

    def stream(
        self,
        content: bytes,
        headers: Mapping[str, str],
        *,
        deadline: float | None,
        secret: str,
        relearn: Relearn | None = None,
    ) -> HTTPModelStream:
        from .model_stream import HTTPModelStream

        return HTTPModelStream(self, content, headers, deadline, secret, relearn)
