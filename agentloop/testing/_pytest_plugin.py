"""agentloop's pytest plugin: the `cassette` fixture and the ``--cassette-mode`` option.

Registered through the ``pytest11`` entry point, so every test session that has agentloop
installed loads it: it imports pytest only; the cassette itself loads when a test asks for the
fixture.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._cassette import Cassette

__all__ = ["MODE_VARIABLE", "cassette", "cassette_path"]

MODE_VARIABLE = "AGENTLOOP_CASSETTE_MODE"
"""The cassette mode when ``--cassette-mode`` is not given (else ``once``)."""
_FAILED = pytest.StashKey[bool]()
_UNSAFE = re.compile(r"[^\w.\[\]=+-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentloop")
    group.addoption(
        "--cassette-mode",
        choices=("once", "record", "replay"),
        default=None,
        help=(
            "how the `cassette` fixture uses its file: once (record when missing, else "
            f"replay; the default), record (always record anew), replay (never record). "
            f"Default from ${MODE_VARIABLE}."
        ),
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note whether the test itself failed (a failed recording is not kept)."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


def cassette_path(request: pytest.FixtureRequest) -> Path:
    """``cassettes/<test module>/<test name>.json`` beside the test's file."""
    test_file = Path(request.path)
    name = _UNSAFE.sub("_", request.node.name).strip("_") or "test"
    return test_file.parent / "cassettes" / test_file.stem / f"{name}.json"


def _mode(config: pytest.Config) -> Any:
    chosen = config.getoption("cassette_mode") or os.environ.get(MODE_VARIABLE, "").strip()
    return chosen or "once"


class _TestFailed(Exception):
    """Stands for the test's own failure when the fixture closes its cassette."""


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """A cassette for this test (`agentloop.testing.cassette`), active for the whole test: the
    first run records to ``cassettes/<test module>/<test name>.json`` beside the test's file,
    later runs replay it. ``--cassette-mode`` (or ``$AGENTLOOP_CASSETTE_MODE``) picks the mode.
    """
    from ._cassette import Cassette

    tape = Cassette(cassette_path(request), _mode(request.config))
    tape.__enter__()
    try:
        yield tape
    finally:
        if request.node.stash.get(_FAILED, False):
            failure = _TestFailed()
            tape.__exit__(_TestFailed, failure, None)
        else:
            tape.__exit__(None, None, None)
