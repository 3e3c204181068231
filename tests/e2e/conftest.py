"""The end-to-end suite: a real model (SmolLM2-135M-Instruct) behind llama.cpp's server.

`make e2e` runs it (``pytest -m e2e tests/e2e``); `make test` deselects it. The server starts
once per session on 127.0.0.1.
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


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    if not local_available():
        pytest.fail("the local model is not installed: run `make e2e`, which installs it")
    with LocalServer(n_ctx=1024) as server:
        yield server
