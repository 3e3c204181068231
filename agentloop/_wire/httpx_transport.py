"""The transport on httpx: a caller's ``http_client``, runs on trio, and proxies from the
environment.

An owned client runs on `StackPool` (O(1) per request) unless the environment names a proxy,
which httpx's own transports then serve, as for any httpx client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import cast

import anyio
import httpx

from .pool import StackPool
from .transport import ssl_context

__all__ = ["HttpxReply", "HttpxTransport", "owned_client"]


def owned_client(timeout: httpx.Timeout, max_connections: int) -> httpx.AsyncClient:
    """The client a model owns on this event loop (never one that follows redirects)."""
    import urllib.request

    if urllib.request.getproxies():
        return httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            verify=ssl_context(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        )
    transport = StackPool(ssl_context(), max_idle=max_connections)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)


class HttpxReply:
    """An `httpx.Response` opened with ``stream=True``."""

    __slots__ = ("_chunks", "_response")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks: AsyncGenerator[bytes] | None = None

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.aread()
        finally:
            await self.aclose()

    async def next_chunk(self) -> bytes | None:
        if self._chunks is None:
            self._chunks = cast("AsyncGenerator[bytes]", self._response.aiter_bytes())
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        chunks, self._chunks = self._chunks, None
        with anyio.move_on_after(5, shield=True):
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                if chunks is not None:
                    await chunks.aclose()
                if not self._response.is_closed:  # a body read to its end is closed already
                    await self._response.aclose()


class HttpxTransport:
    """Posts through one `httpx.AsyncClient`, with the model's timeouts on every request."""

    errors: tuple[type[BaseException], ...] = (httpx.HTTPError,)
    holds_deadline = False  # httpx's timeouts are per phase: `Endpoint` holds a cancel scope

    def __init__(
        self, client: httpx.AsyncClient, timeout: httpx.Timeout, *, owned: bool = False
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._owned = owned

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], limit: float | None = None
    ) -> HttpxReply:
        client = self._client
        request = client.build_request(
            "POST", url, content=content, headers=headers, timeout=self._timeout
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        return HttpxReply(response)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
