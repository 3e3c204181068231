"""Sending a chat-completions request: retries, the overall deadline, error answers, streams.

`Endpoint` posts a JSON body to one URL. Each attempt has an overall deadline (connect, headers
and the whole body or stream) on top of httpx's per-read timeout, so a server that only sends
keep-alive comments cannot hang a run. Failed attempts are retried by the `RetryPolicy`; once a
stream's headers have arrived nothing is retried. httpx's exceptions never leave this module
(they become `APIConnectionError` / `APITimeoutError`, the original kept as ``__cause__``).

Timing on the `ModelResponse`: `latency` is the whole call, retries and their waits included;
`time_to_first_token` is measured from the start of the attempt that succeeded, to the first
delta of a stream, or to the complete body of a non-stream answer (whose first token cannot be
seen any sooner).
"""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import httpx
from anyio.lowlevel import RunVar

from .._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ProtocolError,
)
from .._log import get_logger
from .._messages import ModelResponse
from .learn import about_the_request
from .pool import StackPool
from .response import parse_completion
from .retry import RetryPolicy, parse_retry_after
from .status import status_error

if TYPE_CHECKING:
    from .model_stream import HTTPModelStream

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_LESSONS",
    "ClientPool",
    "Endpoint",
    "Relearn",
    "close_quietly",
    "scrub_error",
    "transport_error",
]

_log = get_logger()
T = TypeVar("T")
MAX_CONNECTIONS = 100
"""Connections of an owned client (httpx's default); more concurrent requests wait their turn."""
MAX_LESSONS = 10
"""Error answers one request may learn from before the next one is final (each downgrades a
feature, and there are fewer features than this)."""
Relearn = Callable[[APIStatusError], bytes | None]
"""Asked about an error answer: the request's new content when the model learned from it."""


class ClientPool:
    """The httpx client to use now: the caller's, or one owned per event loop.

    `agent.run_sync` starts a new event loop each time, and a client bound to a finished loop
    breaks, so the owned client lives in a `RunVar` (one per running loop). A caller's client is
    used as it is and never closed.
    """

    def __init__(
        self,
        http_client: httpx.AsyncClient | None,
        timeout: httpx.Timeout,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._user = http_client
        self._timeout = timeout
        self._max = max_connections
        self._owned: RunVar[httpx.AsyncClient | None] = RunVar("agentloop_http", default=None)
        self._slots: RunVar[anyio.CapacityLimiter | None] = RunVar("agentloop_slots", default=None)

    def slots(self) -> anyio.CapacityLimiter | None:
        """The owned client's connection slots (None for a caller's client).

        Requests beyond the pool's size wait here, in O(1), instead of in httpcore's pool, whose
        scheduling costs O(waiting x connections) per step: thousands of concurrent runs would
        otherwise spend seconds per request in it. Waiting for a slot is not part of a request's
        deadline.
        """
        if self._user is not None:
            return None
        limiter = self._slots.get()
        if limiter is None:
            limiter = anyio.CapacityLimiter(self._max)
            self._slots.set(limiter)
        return limiter

    def slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        limiter = self.slots()
        return limiter if limiter is not None else contextlib.nullcontext()

    def get(self) -> httpx.AsyncClient:
        if self._user is not None:
            return self._user
        client = self._owned.get()
        if client is None or client.is_closed:
            client = self._new_client()
            self._owned.set(client)
        return client

    def _new_client(self) -> httpx.AsyncClient:
        """The owned client: on `StackPool` (O(1) per request) unless the environment names a
        proxy, which httpx's own transports then serve, as for any httpx client."""
        if urllib.request.getproxies():
            return httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                verify=_ssl_context(),
                limits=httpx.Limits(max_connections=self._max, max_keepalive_connections=20),
            )
        transport = StackPool(_ssl_context(), max_idle=self._max)
        return httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=transport)

    async def aclose(self) -> None:
        """Close the client this loop owns (never the caller's)."""
        if self._user is not None:
            return
        client = self._owned.get()
        if client is not None:
            self._owned.set(None)
            await client.aclose()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once: loading the CA bundle costs tens of milliseconds,
    and `run_sync` makes a new client for every run."""
    return httpx.create_ssl_context()


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _scrub_value(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***") if secret in value else value
    if isinstance(value, bytes):
        return value.replace(secret.encode(), b"***")
    if isinstance(value, Mapping):
        items = cast("Mapping[Any, Any]", value).items()
        return {_scrub_value(k, secret): _scrub_value(v, secret) for k, v in items}
    if isinstance(value, list):
        return [_scrub_value(item, secret) for item in cast("list[Any]", value)]
    return value


def scrub_error(error: APIError, secret: str) -> None:
    """Take the key out of an error's message, body and headers (a server may echo what it was
    sent, in an error body, a stream's error event or a response header)."""
    if not secret:
        return
    if secret in error.message:
        error.message = _scrub(error.message, [secret])
        error.args = (error.message,)
    if isinstance(error, APIStatusError):
        error.body = _scrub_value(error.body, secret)
        error.headers = _scrub_value(error.headers, secret)


def transport_error(exc: Exception, what: str, secrets: Sequence[str]) -> APIConnectionError:
    detail = _scrub(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{what}: timed out ({type(exc).__name__}: {detail})")
    return APIConnectionError(f"{what}: {type(exc).__name__}: {detail}")


async def close_quietly(response: httpx.Response) -> None:
    if response.is_closed:  # a body read to its end is closed already (httpx closes it)
        return
    with anyio.move_on_after(5, shield=True):
        with contextlib.suppress(httpx.HTTPError):
            await response.aclose()


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
    ) -> None:
        self.url = url
        self.params: dict[str, str] = dict(params or {})
        self.timeout = timeout
        self.deadline = deadline
        self.policy = policy
        self.pool: ClientPool = ClientPool(http_client, timeout, max_connections or MAX_CONNECTIONS)
        self.model_name = model_name

    async def aclose(self) -> None:
        await self.pool.aclose()

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
        started = anyio.current_time()
        timed: list[float] = []
        body = [content]

        async def attempt() -> ModelResponse:
            async with self.pool.slot():
                timed[:] = [anyio.current_time()]
                response, end = await self.open(body[0], headers, deadline, secret)
                raw = await self.read_body(response, end, secret)
            return self.parse_body(raw)

        def swap(error: APIStatusError) -> bool:
            fresh = relearn(error) if relearn is not None else None
            if fresh is not None:
                body[0] = fresh
            return fresh is not None

        result, retries = await self.retrying(attempt, secret, swap, retry=retry)
        now = anyio.current_time()
        result = result.replace(
            retries=retries, time_to_first_token=now - timed[0], latency=now - started
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

    def _explain_final(self, error: APIError, headers: Mapping[str, str] | None) -> None:
        """Say in a retryable error that it is final because the server asked too long a wait."""
        asked = self.policy.wait_too_long(headers)
        if asked is None or not isinstance(error, APIStatusError):
            return
        if self.policy.is_retryable(error, headers):
            self.policy.note_wait_too_long(error, asked)

    async def open(
        self,
        content: bytes,
        headers: Mapping[str, str],
        deadline: float | None,
        secret: str,
    ) -> tuple[httpx.Response, float]:
        """Send one attempt; returns the open 2xx response and the attempt's deadline (a clock
        time). An error status is read, closed and raised as its typed error."""
        limit = self.deadline if deadline is None else deadline
        end = anyio.current_time() + limit
        client = self.pool.get()
        request = client.build_request(
            "POST", self.url, params=self.params, content=content, headers=headers,
            timeout=self.timeout,
        )  # fmt: skip
        try:
            with anyio.fail_at(end):
                response = await client.send(request, stream=True, follow_redirects=False)
        except TimeoutError as exc:
            raise APITimeoutError(
                f"no answer from {request.url.host} within the {limit:g} s deadline"
            ) from exc
        except httpx.HTTPError as exc:
            raise transport_error(exc, f"request to {request.url.host} failed", [secret]) from exc
        if response.is_success:
            return response, end
        raw = b""
        with contextlib.suppress(APIConnectionError):
            raw = await self.read_body(response, end, secret)
        if secret:
            raw = raw.replace(secret.encode(), b"***")
        raise self.status_error(response, raw)

    def status_error(self, response: httpx.Response, raw: bytes) -> APIStatusError:
        headers = dict(response.headers)
        asked = parse_retry_after(headers)
        error = status_error(
            response.status_code,
            _decode_json(raw),
            headers,
            retry_after=asked if asked is not None and asked > 0 else None,
        )
        if response.is_redirect:
            location = response.headers.get("location", "?")
            error.message = (
                f"{error.message} (redirect to {location} not followed; set base_url to the "
                "final address)"
            )
            error.args = (error.message,)
        return error

    async def read_body(self, response: httpx.Response, end: float, secret: str) -> bytes:
        """The whole body within the deadline; the response is closed afterwards."""
        try:
            with anyio.fail_at(end):
                return await response.aread()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"the answer ({response.status_code}) did not arrive in full before the deadline"
            ) from exc
        except httpx.HTTPError as exc:
            raise transport_error(exc, "reading the answer failed", [secret]) from exc
        finally:
            await close_quietly(response)

    @staticmethod
    def parse_body(raw: bytes) -> ModelResponse:
        try:
            body = json.loads(raw)
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
