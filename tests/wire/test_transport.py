"""The transport seam on real sockets, on each HTTP path (aiohttp, httpx on asyncio, httpx on
trio; see `support.http_paths`): which library serves a loop, gzip, TLS verification, the
connection cap, proxies from the environment, and the session closed with its loop."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support.local_server import LocalServer, Recorded, Reply
from support.local_transport import OK

from agentloop import (
    APIConnectionError,
    APITimeoutError,
    ModelRequest,
    OpenAICompatible,
    UsageError,
    UserMessage,
)
from agentloop._wire.aiohttp_transport import AiohttpTransport
from agentloop._wire.httpx_transport import HttpxTransport
from agentloop._wire.transport import BACKEND_VARIABLE

REQUEST = ModelRequest((UserMessage("hi"),))
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


# The library each HTTP path (the `anyio_backend` fixture's parameter) must end up on.
EXPECTED = {"asyncio": AiohttpTransport, "asyncio+httpx": HttpxTransport, "trio": HttpxTransport}


@pytest.mark.anyio
async def test_each_loop_gets_its_library(
    server: LocalServer, request: pytest.FixtureRequest
) -> None:
    server.script(Reply(200, json_body=OK))
    model = OpenAICompatible("m", base_url=server.base_url, api_key="k")
    transport = model._endpoint.transports.get()
    assert type(transport) is EXPECTED[request.node.callspec.params["anyio_backend"]]
    assert (await model.request(REQUEST)).message.content == "hello"
    await model.aclose()
    assert transport.is_closed


@pytest.mark.anyio
async def test_a_callers_client_is_used_as_it_is(server: LocalServer) -> None:
    server.script(Reply(200, json_body=OK))
    async with httpx.AsyncClient(headers={"X-Mine": "1"}) as client:
        model = OpenAICompatible("m", base_url=server.base_url, api_key="k", http_client=client)
        assert isinstance(model._endpoint.transports.get(), HttpxTransport)
        await model.request(REQUEST)
        await model.aclose()
        assert not client.is_closed
    assert server.requests[0].headers["x-mine"] == "1"


@pytest.mark.anyio
async def test_a_gzip_body_is_decoded(server: LocalServer) -> None:
    server.script(
        Reply(200, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
              body=gzip.compress(json.dumps(OK).encode()))
    )  # fmt: skip
    model = OpenAICompatible("m", base_url=server.base_url, api_key="k")
    assert (await model.request(REQUEST)).message.content == "hello"
    await model.aclose()


@pytest.mark.anyio
async def test_connections_are_capped(server: LocalServer) -> None:
    """Six concurrent requests on a model of two connections: never more than two at once
    (counted while the server holds each request, before it answers)."""
    lock = threading.Lock()
    held, peak = [0], [0]

    def slow(request: Recorded) -> Reply:
        with lock:
            held[0] += 1
            peak[0] = max(peak[0], held[0])
        time.sleep(0.15)
        with lock:
            held[0] -= 1
        return Reply(200, json_body=OK)

    server.handler = slow
    model = OpenAICompatible("m", base_url=server.base_url, api_key="k", max_connections=2)
    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(model.request, REQUEST)
    await model.aclose()
    assert len(server.requests) == 6
    assert peak[0] == 2


@pytest.mark.anyio
async def test_a_read_timeout_given_as_httpx_timeout_applies(server: LocalServer) -> None:
    """`timeout=httpx.Timeout(..., read=...)`: a server silent for longer than the read timeout
    is a timeout long before the (default) deadline, on every path."""
    server.script(Reply(200, json_body=OK, header_delay=2.0))
    model = OpenAICompatible(
        "m", base_url=server.base_url, api_key="k", max_retries=0,
        timeout=httpx.Timeout(5.0, read=0.2),
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await model.request(REQUEST)
    assert time.monotonic() - started < 1.5
    await model.aclose()


@pytest.mark.anyio
async def test_certificates_are_verified(tmp_path: Path) -> None:
    """A server whose certificate no authority signed is refused, on every path."""
    with TLSServer(tmp_path) as port:
        model = OpenAICompatible("m", base_url=f"https://127.0.0.1:{port}/v1", api_key="k",
                                 max_retries=0)  # fmt: skip
        with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
            await model.request(REQUEST)
        await model.aclose()


@pytest.mark.anyio
async def test_a_proxy_named_in_the_environment_is_used(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a proxy in the environment the default transport is httpx's own, which sends the
    request through it (the local server plays the proxy)."""
    await _through_proxy(server, monkeypatch, HttpxTransport)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_asked_for_by_name_also_honours_the_proxy(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKEND_VARIABLE, "aiohttp")
    await _through_proxy(server, monkeypatch, AiohttpTransport)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_aiohttp_asked_for_on_trio_runs_on_httpx(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKEND_VARIABLE, "aiohttp")
    server.script(Reply(200, json_body=OK))
    model = OpenAICompatible("m", base_url=server.base_url, api_key="k")
    assert isinstance(model._endpoint.transports.get(), HttpxTransport)
    assert (await model.request(REQUEST)).message.content == "hello"
    await model.aclose()


def test_an_unknown_library_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_VARIABLE, "requests")
    model = OpenAICompatible("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(UsageError, match=BACKEND_VARIABLE):
        anyio.run(model.request, REQUEST)


def test_the_session_closes_with_its_loop(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`run_sync` and `asyncio.run` start and end a loop per call; the model is never closed by
    the caller, yet nothing is left open (aiohttp would log "Unclosed client session")."""
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    server.script(Reply(200, json_body=OK), Reply(200, json_body=OK))
    model = OpenAICompatible("m", base_url=server.base_url, api_key="k")
    transports: list[Any] = []

    async def once() -> None:
        transports.append(model._endpoint.transports.get())
        await model.request(REQUEST)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        anyio.run(once, backend="asyncio")
        anyio.run(once, backend="asyncio")
        import gc

        gc.collect()
    assert [type(t) for t in transports] == [AiohttpTransport, AiohttpTransport]
    assert transports[0] is not transports[1]
    assert all(t.is_closed for t in transports)
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def _through_proxy(
    proxy: LocalServer, monkeypatch: pytest.MonkeyPatch, library: type
) -> None:
    """A request to a host that does not exist, answered by `proxy` (named in HTTP_PROXY)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    proxy.script(Reply(200, json_body=OK))
    model = OpenAICompatible("m", base_url="http://model.invalid/v1", api_key="k")
    assert isinstance(model._endpoint.transports.get(), library)
    assert (await model.request(REQUEST)).message.content == "hello"
    await model.aclose()
    assert proxy.requests[0].headers["host"] == "model.invalid"
    assert proxy.requests[0].path == "/v1/chat/completions"


class TLSServer:
    """A TLS server on 127.0.0.1 with a self-signed certificate (made by the openssl tool)."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("the openssl tool is not installed")
        self._cert, self._key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-keyout", str(self._key), "-out", str(self._cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(5)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        return self._listener.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass  # the client refused the certificate, as it must
