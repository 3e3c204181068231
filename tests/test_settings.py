"""Model settings: the run's merged over the agent's."""

from __future__ import annotations

import pytest

from agentloop import Agent, ModelSettings
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


async def test_settings_merge_run_over_agent() -> None:
    with FakeServer([reply("x")]) as server:
        agent = Agent(server.model(), settings=ModelSettings(temperature=0.1, seed=7))
        await agent.run("go", settings=ModelSettings(temperature=0.9))
    body = server.requests[0]
    assert (body["temperature"], body["seed"]) == (0.9, 7)
