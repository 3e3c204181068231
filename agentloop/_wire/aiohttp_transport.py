"""The fast transport: aiohttp, the default on asyncio.

Chosen by measurement (`make bench`, raw loops on the same server): a tool run's client CPU is
0.37 ms on aiohttp against 1.5 ms on httpx, and the bare-asyncio floor is 0.22 ms. httptools
under an asyncio protocol would have meant writing the client around it (the pool, TLS, gzip,
chunked bodies, proxies); aiohttp is that client, kept up, with a C parser.

Settings that hold on both paths: certificate verification with the same context as httpx,
no redirects, no cookies kept, gzip decoded, connections capped (`Transports` holds the slots;
aiohttp's own cap is the same number) and kept 5 s when idle (httpx's default). A connection
is reused only when its body was read to the end.

The session of an event loop is closed by that loop's shutdown (`asyncio.run`, `anyio.run`,
`run_sync`): an async generator that owns it is finalized by ``loop.shutdown_asyncgens()``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

import aiohttp
from anyio.lowlevel import cancel_shielded_checkpoint
from yarl import URL

from .transport import ssl_context

if TYPE_CHECKING:
    import httpx

__all__ = ["AiohttpReply", "AiohttpTransport"]

KEEPALIVE_EXPIRY = 5.0


class AiohttpReply:
    """An aiohttp response whose headers have arrived."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        finally:
            await self.aclose()

    async def next_chunk(self) -> bytes | None:
        return await self._response.content.readany() or None

    async def aclose(self) -> None:
        response = self._response
        if response.closed:
            return
        if response.content.is_eof():
            response.release()  # the connection goes back to the pool
            return
        response.close()  # half read: the connection is dropped
        # asyncio closes the socket on the loop's next iteration: let it run now, so that the
        # connection is gone when this returns (as it is on httpx), whatever the caller does next.
        await cancel_shielded_checkpoint()


async def _owner(session: aiohttp.ClientSession) -> AsyncGenerator[None]:
    """Holds `session` until closed: by `aclose`, or by the loop's shutdown of async generators."""
    try:
        yield
    finally:
        await session.close()


class AiohttpTransport:
    """Posts through an aiohttp session owned by one event loop."""

    errors: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)
    """aiohttp's own, and the socket's (its timeouts are `TimeoutError`, an `OSError`)."""
    holds_deadline = True
    """aiohttp's total timeout bounds the headers and the body (until the connection goes back
    to the pool) and raises the built-in `TimeoutError`; its timer costs about half of a cancel
    scope's on every request (`make bench`). Its per-phase timeouts raise subclasses of it."""

    def __init__(
        self,
        timeout: httpx.Timeout,
        deadline: float,
        max_connections: int,
        *,
        trust_env: bool = False,
    ) -> None:
        read = timeout.read if timeout.read is not None and timeout.read < deadline else None
        self._connect, self._sock_read = timeout.connect, read
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        connector = aiohttp.TCPConnector(
            limit=max_connections, ssl=ssl_context(), keepalive_timeout=KEEPALIVE_EXPIRY
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # The attempt's deadline is the total; a per-read timer only when it is shorter.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=read),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=trust_env,
        )
        self._urls: dict[str, URL] = {}
        self._owner: AsyncGenerator[None] | None = None

    @property
    def is_closed(self) -> bool:
        return self._session.closed

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], limit: float | None = None
    ) -> AiohttpReply:
        if self._owner is None:
            self._owner = _owner(self._session)
            await self._owner.__anext__()
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        if limit is None:  # the caller holds the deadline; the session's timeouts apply
            response = await self._session.request(
                "POST", parsed, data=content, headers=headers, allow_redirects=False
            )
            return AiohttpReply(response)
        timeout = self._timeouts.get(limit) or self._timeout(limit)
        response = await self._session.request(
            "POST", parsed, data=content, headers=headers, allow_redirects=False, timeout=timeout
        )
        return AiohttpReply(response)

    def _timeout(self, limit: float) -> aiohttp.ClientTimeout:
        if len(self._timeouts) > 64:  # deadlines given per run vary: keep only recent ones
            self._timeouts.clear()
        # No rounding up to a whole second (aiohttp's default past 5 s): the deadline is exact.
        timeout = self._timeouts[limit] = aiohttp.ClientTimeout(
            total=limit,
            sock_connect=self._connect,
            sock_read=self._sock_read,
            ceil_threshold=float("inf"),
        )
        return timeout

    async def aclose(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            await owner.aclose()
        else:
            await self._session.close()
