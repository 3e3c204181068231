"""`MCPServer`: an MCP server's tools for an agent, through the official `mcp` SDK.

A server is configuration until a run connects it: each run that uses it starts the server
(a child process over stdio, or a session over streamable HTTP), lists its tools, and closes it
when the run ends, however it ends. ``async with server:`` holds one connection instead, which
every run inside the block shares (and which is closed when the block ends).

Failures of the server are `MCPServerError` (it did not start, died, broke the protocol) and
`MCPTimeoutError` (it did not answer in time), naming the server; they end the run. A result the
server marks ``isError`` is the tool's own failure: it goes back to the model.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from .._errors import MCPServerError, MCPTimeoutError, UsageError
from .._log import get_logger
from .._tool_return import ToolReturn
from ._convert import MCPToolError, result_value, tools_of

if TYPE_CHECKING:
    from mcp import Client
    from mcp.client.session import MessageHandlerFnT

    from .._tools import Tool

__all__ = ["MCPServer"]

_log = get_logger()
_MAX_PAGES = 20
"""Pages of ``tools/list`` read at most (a server that pages forever cannot hang a run)."""
Connector = Callable[[AsyncExitStack, "MessageHandlerFnT", float], "Client"]
"""Builds the SDK's client (anything it needs closed goes on the stack)."""


class MCPServer:
    """An MCP server, for ``Agent(model, toolsets=[server])``. Build one with `stdio` or `http`.

    Args (of both constructors):
        name: names the server in errors and logs (by default the command or the URL's host).
        prefix: put before each of its tool names, so that servers (and local tools) with tools
            of the same name can be used together.
        timeout: seconds a tool call may take; past them the run ends with `MCPTimeoutError`.
        connect_timeout: seconds to start the server and list its tools.
        max_description_chars: longer tool descriptions are cut (a server is untrusted input).
    """

    __slots__ = (
        "_connect",
        "_held",
        "_stack",
        "connect_timeout",
        "max_description_chars",
        "name",
        "prefix",
        "timeout",
    )
    name: str
    """Names the server in errors and logs."""
    prefix: str
    """Put before each of its tool names."""
    timeout: float
    """Seconds a tool call may take."""
    connect_timeout: float
    """Seconds to start the server and list its tools."""
    max_description_chars: int
    """Longer tool descriptions are cut."""

    def __init__(
        self,
        connect: Connector,
        *,
        name: str,
        prefix: str = "",
        timeout: float = 60.0,
        connect_timeout: float = 30.0,
        max_description_chars: int = 1024,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0 or max_description_chars < 1:
            raise UsageError("timeout and connect_timeout must be > 0, max_description_chars >= 1")
        self._connect = connect
        self.name = name
        self.prefix = prefix
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_description_chars = max_description_chars
        self._held: _Connection | None = None
        self._stack: AsyncExitStack | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **options: Any,
    ) -> MCPServer:
        """A server run as a child process, spoken to over its stdin and stdout.

        The child gets only a safe subset of this process's environment (``PATH``, ``HOME``...,
        as the SDK chooses: never API keys) plus `env`. Its stderr is this process's.
        """
        from mcp import StdioServerParameters

        params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )

        def connect(stack: AsyncExitStack, handler: MessageHandlerFnT, timeout: float) -> Client:
            from mcp import Client
            from mcp.client.stdio import stdio_client

            transport = stdio_client(params, errlog=_errlog(stack))
            return Client(transport, message_handler=handler, read_timeout_seconds=timeout)

        options.setdefault("name", command.rsplit("/", 1)[-1])
        return cls(connect, **options)

    @classmethod
    def http(cls, url: str, headers: Mapping[str, str] | None = None, **options: Any) -> MCPServer:
        """A server at `url`, over streamable HTTP. `headers` (an ``Authorization`` for one) go
        with every request and appear in no repr, log or error."""
        sent = dict(headers or {})

        def connect(stack: AsyncExitStack, handler: MessageHandlerFnT, timeout: float) -> Client:
            import httpx2
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30.0, read=300.0))
            stack.push_async_callback(http.aclose)
            transport = streamable_http_client(url, http_client=http)
            return Client(transport, message_handler=handler, read_timeout_seconds=timeout)

        options.setdefault("name", _host(url))
        return cls(connect, **options)

    def __repr__(self) -> str:
        return f"MCPServer(name={self.name!r}, prefix={self.prefix!r})"

    async def __aenter__(self) -> MCPServer:
        if self._held is not None:
            raise UsageError(f"MCP server {self.name!r} is already open (async with) elsewhere")
        stack = AsyncExitStack()
        try:
            self._held = await stack.enter_async_context(self._open())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack, self._held = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def connect(self) -> AbstractAsyncContextManager[_RunView]:
        """For one run: the held connection (``async with server:``), else a new one."""
        return _viewed(self._held) if self._held is not None else _viewed_new(self._open())

    @asynccontextmanager
    async def _open(self) -> AsyncGenerator[_Connection]:
        async with AsyncExitStack() as stack:
            connection = _Connection(self)
            # No cancel scope around these: the client's task groups outlive this block. The
            # client's read timeout bounds the handshake instead.
            with _server_errors(self.name, "could not start"):
                made = self._connect(stack, connection.on_message, self.connect_timeout)
                client = await stack.enter_async_context(made)
                await stack.enter_async_context(connection.watching(client))
            try:
                yield connection
            finally:
                connection.closed = True
                _log.debug("mcp_server_closing", server=self.name)


@asynccontextmanager
async def _viewed(connection: _Connection) -> AsyncGenerator[_RunView]:
    yield _RunView(connection)


@asynccontextmanager
async def _viewed_new(opened: AbstractAsyncContextManager[_Connection]) -> AsyncGenerator[_RunView]:
    async with opened as connection:
        yield _RunView(connection)


class _RunView:
    """One run's view of a connection (which runs may share): whether the tools changed since
    this run listed them."""

    __slots__ = ("_connection", "_listed")

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._listed = -1

    @property
    def changed(self) -> bool:
        return self._listed != self._connection.version

    async def list_tools(self) -> list[Tool]:
        refresh = self._listed >= 0  # listed before: the server's cached list is stale
        self._listed = self._connection.version
        return await self._connection.list_tools(refresh=refresh)


class _Connection:
    """One connected session: lists the tools, calls them, counts the changes of its tools."""

    __slots__ = ("_client", "_server", "closed", "version")

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._client: Client | None = None
        self.version = 0
        self.closed = False

    async def on_message(self, message: Any) -> None:
        """The SDK's handler of what the server sends unasked: a ``tools/list_changed``
        notification (servers of the protocols before 2026-07-28) marks the tools changed."""
        from mcp_types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification):
            self.version += 1
        await anyio.lowlevel.checkpoint()

    @asynccontextmanager
    async def watching(self, client: Client) -> AsyncGenerator[None]:
        """Hold `client`, listening for ``tools/list_changed`` where the server sends it."""
        self._client = client
        if not _announces_changes(client):
            yield
            return
        async with anyio.create_task_group() as group:
            await group.start(self._listen, client)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _listen(self, client: Client, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        from mcp.client.subscriptions import ListenNotSupportedError

        try:
            async with client.listen(tools_list_changed=True) as events:
                task_status.started()
                async for _ in events:
                    self.version += 1
        except ListenNotSupportedError:
            task_status.started()  # an older protocol: no listening (its notifications are lost)
        except Exception as exc:  # the session's end is reported where it is used
            _log.debug("mcp_listen_ended", server=self._server.name, error=repr(exc))

    async def list_tools(self, *, refresh: bool) -> list[Tool]:
        client = self._require()
        specs: list[Any] = []
        cursor: str | None = None
        with _server_errors(self._server.name, "failed to list its tools"):
            with anyio.fail_after(self._server.connect_timeout):
                for _ in range(_MAX_PAGES):
                    mode = "refresh" if refresh else "use"
                    page = await client.list_tools(cursor=cursor, cache_mode=mode)
                    specs.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        server = self._server
        return tools_of(
            specs,
            server=server.name,
            prefix=server.prefix,
            max_description_chars=server.max_description_chars,
            call=self.call,
        )

    async def call(self, name: str, arguments: dict[str, Any]) -> str | ToolReturn:
        client = self._require()
        server = self._server
        with _server_errors(server.name, f"failed during a call of {name!r}", call=True):
            with anyio.fail_after(server.timeout):
                result = await client.call_tool(
                    name, arguments, read_timeout_seconds=server.timeout
                )
        value = result_value(result)
        if result.is_error:
            text = value.value if isinstance(value, ToolReturn) else value
            raise MCPToolError(text or "the tool reported an error")
        return value

    def _require(self) -> Client:
        if self._client is None or self.closed:
            raise MCPServerError(
                f"MCP server {self._server.name!r} is not connected (its run or its async with "
                "block ended)",
                server=self._server.name,
            )
        return self._client


def _announces_changes(client: Client) -> bool:
    tools = client.server_capabilities.tools
    return bool(tools is not None and tools.list_changed)


@contextmanager
def _server_errors(server: str, what: str, *, call: bool = False) -> Generator[None]:
    """The SDK's and the transport's exceptions as `MCPServerError`s naming `server`. In a
    `call`, an error the server answered (unknown tool, invalid arguments) is the tool's own
    failure (`MCPToolError`, for the model); elsewhere it is the server's."""
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
    from pydantic import ValidationError

    try:
        yield
    except MCPToolError:
        raise
    except TimeoutError as exc:
        raise MCPTimeoutError(
            f"MCP server {server!r} {what}: no answer in time", server=server
        ) from exc
    except MCPError as exc:
        if exc.code == REQUEST_TIMEOUT:
            message = f"MCP server {server!r} {what}: no answer in time"
            raise MCPTimeoutError(message, server=server) from exc
        if call and exc.code != CONNECTION_CLOSED:
            raise MCPToolError(f"the server answered with error {exc.code}: {exc.message}") from exc
        detail = "the connection closed" if exc.code == CONNECTION_CLOSED else exc.message
        raise MCPServerError(f"MCP server {server!r} {what}: {detail}", server=server) from exc
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream,
            ValidationError, ExceptionGroup) as exc:  # fmt: skip
        detail = _detail(exc)
        raise MCPServerError(f"MCP server {server!r} {what}: {detail}", server=server) from exc


def _detail(exc: BaseException) -> str:
    """The first leaf of an exception group (the SDK's task groups wrap what broke)."""
    inner: tuple[BaseException, ...] = getattr(exc, "exceptions", ())
    if inner:
        return _detail(inner[0])
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name


def _errlog(stack: AsyncExitStack) -> TextIO:
    """Where the child's stderr goes: this process's, if it is a real file (not so under
    pytest's capture or in a notebook), else the original stderr, else nowhere."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None and stream.fileno() >= 0:
                return stream
        except (OSError, ValueError, AttributeError):
            continue
    devnull = open(os.devnull, "w")  # noqa: SIM115 (closed with the connection)
    stack.callback(devnull.close)
    return devnull


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or url.split("/")[0] or "mcp"
