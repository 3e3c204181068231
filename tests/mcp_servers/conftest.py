"""Real MCP servers for the tests: `calc_server.py` over stdio (a child per run) and over
streamable HTTP on 127.0.0.1 (one process for the module)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from agentloop.mcp import MCPServer

CALC = str(Path(__file__).with_name("calc_server.py"))


def stdio_server(**options: Any) -> MCPServer:
    options.setdefault("name", "calc")
    return MCPServer.stdio(sys.executable, [CALC, "stdio"], **options)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, CALC, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP HTTP test server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


@pytest.fixture(params=["stdio", "http"])
def calc(request: pytest.FixtureRequest) -> MCPServer:
    """The calc server over each transport."""
    if request.param == "stdio":
        return stdio_server()
    url: str = request.getfixturevalue("http_url")
    return MCPServer.http(url, headers={"Authorization": "Bearer mcp-test-token"})
