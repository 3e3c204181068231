"""The owned client's connection pool: O(1) per request, behind httpx's transport interface.

httpcore's `AsyncConnectionPool` (httpx's default transport) rescans every connection and every
waiting request on each state change (a request starts, a response closes): at 1,000 open
connections that is tens of milliseconds of CPU per agent run, more than the run itself. This
pool keeps the idle HTTP/1.1 connections of each origin in a stack: a request takes the most
recently used one that is still usable (or opens a new one) and gives it back when its response
is closed. Nothing here waits or counts: `ClientPool`'s capacity limiter already caps the
connections in use, in O(1).

Everything else is httpx and httpcore: `httpx.AsyncClient` builds and sends the requests, one
`httpcore.AsyncHTTPConnection` per connection speaks HTTP/1.1 and TLS, and httpcore's errors
leave as httpx's (the same names, the most specific one), as with httpx's own transport.
A caller's own `http_client` never goes through this pool.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httpcore
import httpx

__all__ = ["KEEPALIVE_EXPIRY", "StackPool"]

KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle connection is kept (httpx's default)."""
_Key = tuple[bytes, bytes, int]


def _httpx_error(exc: Exception) -> type[httpx.HTTPError] | None:
    """The httpx exception that stands for an httpcore one (the most specific of the same name)."""
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("httpcore"):
            mapped = getattr(httpx, cls.__name__, None)
            if isinstance(mapped, type) and issubclass(mapped, httpx.HTTPError):
                return mapped
    return None


def _reraise(exc: Exception) -> None:
    """Raise `exc` as httpx's exception of the same name, if it has one (else return)."""
    mapped = _httpx_error(exc)
    if mapped is not None:
        raise mapped(str(exc)) from exc


class StackPool(httpx.AsyncBaseTransport):
    """An HTTP/1.1 transport whose idle connections are a stack per origin."""

    def __init__(self, ssl_context: ssl.SSLContext, max_idle: int) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._idle: dict[_Key, deque[httpcore.AsyncHTTPConnection]] = {}
        self._busy: dict[httpcore.AsyncHTTPConnection, _Key] = {}

    @property
    def connections(self) -> list[httpcore.AsyncHTTPConnection]:
        """Every open connection, idle or in use."""
        idle = [c for stack in self._idle.values() for c in stack]
        return [*idle, *self._busy]

    async def _take(self, origin: httpcore.Origin, key: _Key) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            await connection.aclose()
        return httpcore.AsyncHTTPConnection(
            origin, ssl_context=self._ssl_context, keepalive_expiry=KEEPALIVE_EXPIRY
        )

    async def _give_back(self, connection: httpcore.AsyncHTTPConnection) -> None:
        key = self._busy.pop(connection, None)
        if key is None or not connection.is_idle():
            await connection.aclose()
            return
        stack = self._idle.setdefault(key, deque())
        stack.append(connection)
        oldest = stack[0]
        if len(stack) > self._max_idle or oldest.has_expired():
            stack.popleft()
            await oldest.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https") or not url.host:
            raise httpx.UnsupportedProtocol(f"cannot send a request to {url!r}")
        core_url = httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        )
        core_request = httpcore.Request(
            method=request.method,
            url=core_url,
            headers=request.headers.raw,
            content=request.stream,  # pyright: ignore[reportArgumentType]
            extensions=request.extensions,
        )
        origin = core_url.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = await self._take(origin, key)
        self._busy[connection] = key
        try:
            response = await connection.handle_async_request(core_request)
        except BaseException as exc:
            self._busy.pop(connection, None)
            await connection.aclose()
            if isinstance(exc, Exception):
                _reraise(exc)
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, connection, self),  # pyright: ignore[reportArgumentType]
            extensions=cast("dict[str, Any]", response.extensions),  # pyright: ignore[reportUnknownMemberType]
        )

    async def aclose(self) -> None:
        connections = self.connections
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.aclose()


class _Body(httpx.AsyncByteStream):
    """A response body; closing it gives its connection back to the pool."""

    def __init__(
        self, stream: Any, connection: httpcore.AsyncHTTPConnection, pool: StackPool
    ) -> None:
        self._stream = stream
        self._connection: httpcore.AsyncHTTPConnection | None = connection
        self._pool = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            _reraise(exc)
            raise

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await self._stream.aclose()
        except Exception as exc:
            _reraise(exc)
            raise
        finally:
            await self._pool._give_back(connection)  # pyright: ignore[reportPrivateUsage]
