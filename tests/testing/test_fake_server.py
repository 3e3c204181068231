"""`FakeServer` itself: a script not used up, or overrun, fails the test."""

from __future__ import annotations

import pytest

from agentloop import Agent
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


def test_fake_server_fails_when_script_is_not_used_up() -> None:
    server = FakeServer([reply("a"), reply("b")])
    Agent(server.model()).run_sync("go")
    with pytest.raises(AssertionError, match="1 replies left"):
        server.assert_done()


async def test_fake_server_fails_when_overrun() -> None:
    server = FakeServer([])
    with pytest.raises(Exception, match="script exhausted"):
        await Agent(server.model()).run("go")
    with pytest.raises(AssertionError, match="more requests"):
        server.assert_done()
