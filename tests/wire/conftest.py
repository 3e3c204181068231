"""Fixtures of the wire tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest
from support.http_paths import http_paths_fixture
from support.local_server import LocalServer

anyio_backend = http_paths_fixture()


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running
