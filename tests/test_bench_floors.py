"""The benchmark's raw floors (tools/bench/clients: raw httpx, raw aiohttp, raw bare asyncio)
each complete the benchmark's runs against its real fake server on 127.0.0.1: a tool run, a
structured run and a streamed answer, three times over on two connections at most."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench"
sys.path.insert(0, str(BENCH))

from server import CHUNKS  # noqa: E402  # pyright: ignore[reportMissingImports]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(BENCH / "server.py"), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and "ready" in server.stdout.readline()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the floors are asyncio programs
@pytest.mark.parametrize("name", ["raw", "raw_aiohttp", "raw_asyncio"])
async def test_each_floor_completes_every_run(base_url: str, name: str) -> None:
    if name == "raw_aiohttp":
        pytest.importorskip("aiohttp")
    client = importlib.import_module(f"clients.{name}").Client()
    await client.open(base_url, 2)
    try:
        for _ in range(3):
            assert await client.tool_run() == "3"
            report = await client.structured_run()
            assert report.answer == 3 and len(report.steps) == 3
            assert await client.stream_run() == CHUNKS
    finally:
        await client.close()
