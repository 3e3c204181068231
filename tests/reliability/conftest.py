"""Fixtures of the reliability suite: a fault server on 127.0.0.1 and a recording retry sleep."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.http_paths import http_paths_fixture

from reliability.helpers import FaultServer, Sleeps

anyio_backend = http_paths_fixture()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running
        assert running.wait_idle(5), "an answer was still being written after the test"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
