"""Fixtures of the wire tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest
from support.local_server import LocalServer


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running
