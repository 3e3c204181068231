"""The seam under `Endpoint`: one POST and its answer, on whichever HTTP library serves the loop.

`Endpoint` (retries, deadlines, error answers) and `HTTPModelStream` (the event stream) speak
only to a `Transport` and its `Reply`. Two libraries stand behind them:

- aiohttp (`AiohttpTransport`), the default on asyncio: its C HTTP parser and connection pool
  cost about a quarter of httpx's CPU per request (`make bench`). It is imported with the first
  request, not with agentloop.
- httpx (`HttpxTransport`): a caller's own ``http_client`` (used as it is), every run on trio,
  and an owned client when the environment names a proxy (httpx reads it as always).

``AGENTLOOP_HTTP_BACKEND=httpx`` (or ``aiohttp``) picks the library of the owned client for
every model, for instance to rule the fast path out when chasing a problem. A library's own
exceptions never leave the transport's user: `Transport.errors` names them and
`transport_error` turns one into `APIConnectionError` / `APITimeoutError`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
import sniffio
from anyio.lowlevel import RunVar

from .._errors import APIConnectionError, APITimeoutError, UsageError
from .slots import Slots

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BACKEND_VARIABLE",
    "MAX_CONNECTIONS",
    "Here",
    "Reply",
    "Tap",
    "Transport",
    "Transports",
    "replaying",
    "scrub",
    "set_tap",
    "ssl_context",
    "transport_error",
]

MAX_CONNECTIONS = 100
"""Connections of an owned client (httpx's default); more concurrent requests wait their turn."""
BACKEND_VARIABLE = "AGENTLOOP_HTTP_BACKEND"
_BACKENDS = ("aiohttp", "httpx")
_tap: Tap | None = None
"""What every request of the process goes through instead, while set (a cassette)."""


class Reply(Protocol):
    """An answer whose headers have arrived; its body is still to be read."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (names compared without case)."""
        ...

    async def read(self) -> bytes:
        """The whole body (decoded from gzip), after which the reply is closed."""
        ...

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrives; None at its end."""
        ...

    async def aclose(self) -> None:
        """Close (idempotent): the connection is kept when the body was read to its end."""
        ...


class Transport(Protocol):
    """Posts bodies; one per event loop (or the caller's client)."""

    errors: tuple[type[BaseException], ...]
    """The library's exceptions that a post or a read may raise."""
    holds_deadline: bool
    """Whether `post` enforces its `limit` over the whole answer, raising the built-in
    `TimeoutError` when it passes (else the caller holds the deadline in a cancel scope)."""

    @property
    def is_closed(self) -> bool: ...

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], limit: float | None = None
    ) -> Reply:
        """Send; `limit` (seconds) bounds the headers and the body together, where the library
        holds deadlines (`holds_deadline`)."""
        ...

    async def aclose(self) -> None: ...


class Tap(Protocol):
    """Stands between every model and its transport while set (`set_tap`): a cassette."""

    def here(self, transports: Transports) -> Here:
        """What a request uses instead of ``transports.untapped()``."""
        ...

    @property
    def recording(self) -> bool:
        """False while it answers from a recording: no request reaches a server, so a model
        needs no key (one recorded with a key replays in CI without it)."""
        ...


def replaying() -> bool:
    """Whether requests are answered from a recording now (a cassette replaying)."""
    return _tap is not None and not _tap.recording


def set_tap(tap: Tap | None) -> Tap | None:
    """Route every request of the process through `tap` (None: straight again); returns the
    tap it replaces. The only cost when none is set is one check per request."""
    global _tap
    previous, _tap = _tap, tap
    return previous


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def transport_error(exc: BaseException, what: str, secrets: Sequence[str]) -> APIConnectionError:
    """The typed error for a library's exception (a timeout is `APITimeoutError`)."""
    detail = scrub(_explained(exc), secrets)
    if _is_timeout(exc):
        return APITimeoutError(f"{what}: timed out ({type(exc).__name__}: {detail})")
    return APIConnectionError(f"{what}: {type(exc).__name__}: {detail}")


def _explained(exc: BaseException) -> str:
    """The exception's message, or the first message among its causes (on trio, httpx's
    `ConnectError` for a refused certificate says nothing itself)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if str(seen):
            return str(seen) if seen is exc else f"{type(seen).__name__}: {seen}"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):  # aiohttp's own timeouts are TimeoutErrors
        return True
    return any(cls.__name__ == "TimeoutException" for cls in type(exc).__mro__)  # httpx's


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificate verification against certifi's bundle), built
    once and shared by both libraries: loading the bundle costs tens of milliseconds, and
    `run_sync` starts a new event loop (and client) for every run."""
    import httpx

    return httpx.create_ssl_context()


def chosen_backend() -> str | None:
    """The library ``AGENTLOOP_HTTP_BACKEND`` names, or None (the default: pick per loop)."""
    name = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if not name:
        return None
    if name not in _BACKENDS:
        raise UsageError(f"{BACKEND_VARIABLE} must be 'aiohttp' or 'httpx', not {name!r}")
    return name


class Here:
    """What requests on the running loop share: its transport, connection slots and clock.

    Fetched once per request (one `RunVar` lookup): each anyio call that finds the running
    library on its own costs more than the rest of its work.
    """

    __slots__ = ("clock", "limiter", "transport")

    def __init__(
        self,
        transport: Transport,
        limiter: Slots | None,
        clock: Callable[[], float],
    ) -> None:
        self.transport: Transport = transport
        self.limiter: Slots | None = limiter
        self.clock: Callable[[], float] = clock


class Transports:
    """The transport to use now: the caller's client's, or one owned per event loop.

    `agent.run_sync` starts a new event loop each time, and a client bound to a finished loop
    breaks, so the owned transport lives in a `RunVar` (one per running loop), with the
    connection slots that cap it.
    """

    def __init__(
        self,
        http_client: httpx.AsyncClient | None,
        timeout: httpx.Timeout,
        deadline: float,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._user: Here | None = None
        if http_client is not None:
            from .httpx_transport import HttpxTransport

            self._user = Here(HttpxTransport(http_client, timeout), None, anyio.current_time)
        self._timeout = timeout
        self._deadline = deadline
        self._max = max_connections
        self._owned: RunVar[Here | None] = RunVar("agentloop_transport", default=None)

    def here(self) -> Here:
        """The running loop's transport, slots and clock (made on first use), or the tap's."""
        if _tap is not None:
            return _tap.here(self)
        if self._user is not None:  # `untapped`, inlined: this runs on every request
            return self._user
        here = self._owned.get()
        if here is None:
            here = self._new()
            self._owned.set(here)
        return here

    def untapped(self) -> Here:
        """`here` as if no tap were set."""
        if self._user is not None:
            return self._user
        here = self._owned.get()
        if here is None:
            here = self._new()
            self._owned.set(here)
        return here

    def get(self) -> Transport:
        return self.here().transport

    def slots(self) -> Slots | None:
        """The owned transport's connection slots (None for a caller's client).

        Requests beyond the pool's size wait here, in O(1) and fairly (a run that has started
        goes ahead of one that has not: see `Slots`), instead of in the library's pool.
        Waiting for a slot is not part of a request's deadline; it is its `queue_wait`.
        """
        return self.here().limiter

    def _new(self) -> Here:
        limiter = Slots(self._max)
        backend = chosen_backend() or _default_backend()
        if sniffio.current_async_library() == "asyncio":
            clock = asyncio.get_running_loop().time  # what anyio's deadlines use on asyncio
            if backend == "aiohttp":
                from .aiohttp_transport import AiohttpTransport

                proxied = bool(urllib.request.getproxies())  # only when asked for by name
                transport = AiohttpTransport(
                    self._timeout, self._deadline, self._max, trust_env=proxied
                )
                return Here(transport, limiter, clock)
        else:
            clock = anyio.current_time
        from .httpx_transport import HttpxTransport, owned_client

        client = owned_client(self._timeout, self._max)
        return Here(HttpxTransport(client, self._timeout, owned=True), limiter, clock)

    async def aclose(self) -> None:
        """Close the transport this loop owns (never the caller's client)."""
        if self._user is not None:
            return
        here = self._owned.get()
        if here is not None:
            self._owned.set(None)
            await here.transport.aclose()


def _default_backend() -> str:
    """aiohttp on asyncio with no proxy in the environment; httpx otherwise."""
    if sniffio.current_async_library() != "asyncio" or urllib.request.getproxies():
        return "httpx"
    return "aiohttp"
