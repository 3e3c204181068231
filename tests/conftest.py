"""Every async test runs on asyncio and on trio; no test reaches the network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

from agentloop.testing import block_network

# CI runs a fixed, reproducible set of examples (a failure there must be re-runnable); locally
# every run explores new inputs. AGENTLOOP_FUZZ_EXAMPLES deepens the fuzz suite on demand.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "OPENAI_BASE_URL", "OPENROUTER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with block_network():
        yield


@pytest.fixture(autouse=True)
def _structlog_unconfigured() -> Iterator[None]:
    """structlog's `capture_logs` leaves structlog "configured" (printing to stdout) after it
    restores the processors; start and end every test with structlog as an application that
    never configured it, so that agentloop's logs stay where the test expects them."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
