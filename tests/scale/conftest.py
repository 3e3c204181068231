"""The scale suite: Ray Data and DBOS, each against a fake chat server in its own process.

`make scale` runs it (``pytest -m scale tests/scale``, with the `ray` and `dbos` extras);
`make test` deselects it, so the plain run stays fast and needs neither extra.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scale: Ray Data and DBOS (the ray and dbos extras)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if _HERE in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.scale)
    if "scale" not in (config.getoption("markexpr") or ""):
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if item not in mine]
