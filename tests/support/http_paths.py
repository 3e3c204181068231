"""The three HTTP paths a test of the transport runs on: aiohttp (asyncio's default), httpx on
asyncio (``AGENTLOOP_HTTP_BACKEND=httpx``) and httpx on trio.

A test module or conftest takes them with ``anyio_backend = http_paths_fixture()``.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentloop._wire.transport import BACKEND_VARIABLE

HTTP_PATHS = ["asyncio", "asyncio+httpx", "trio"]


def http_paths_fixture() -> Any:
    @pytest.fixture(params=HTTP_PATHS)
    def anyio_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        backend, _, library = request.param.partition("+")
        if library:
            monkeypatch.setenv(BACKEND_VARIABLE, library)
        else:
            monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
        return backend

    return anyio_backend
