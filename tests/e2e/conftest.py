"""The end-to-end suite: a real model (SmolLM2-135M-Instruct) behind each real local server.

`make e2e` runs it (``pytest -m e2e tests/e2e``); `make test` deselects it. Each server starts
once per session on 127.0.0.1, and every test that takes `local_server` runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentloop.local import LocalServer, local_available

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if _HERE in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.e2e)
    if "e2e" not in (config.getoption("markexpr") or ""):
        keep = [item for item in items if item not in mine]
        config.hook.pytest_deselected(items=[item for item in items if item in mine])
        items[:] = keep


BACKENDS = ("llama-server", "llama-cpp-python")


@pytest.fixture
def anyio_backend() -> str:
    """asyncio: a tiny CPU model makes each real run take seconds, and the offline suite
    already runs every test on asyncio and trio against real HTTP servers on 127.0.0.1; the
    tests that must also run on trio here say so."""
    return "asyncio"


@pytest.fixture(scope="session", params=BACKENDS)
def local_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """Each real server in turn (llama.cpp's llama-server, then llama-cpp-python's), started once
    for all the tests that use it."""
    if not local_available():
        pytest.fail("the local model is not installed: run `make e2e`, which installs it")
    with LocalServer(backend=request.param, n_ctx=2048) as server:
        yield server
