"""Messages: a history round trips through JSON and a run continues from it."""

from __future__ import annotations

import pytest
from support.scripted import add

from agentloop import Agent, messages_from_json
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


async def test_history_round_trips_through_json_and_continues() -> None:
    with FakeServer([tool_call(("add", {"a": 1, "b": 2})), reply("3"), reply("6")]) as server:
        agent = Agent(server.model(), tools=[add], instructions="Do sums.")
        first = await agent.run("1+2?")
        loaded = messages_from_json(first.messages_json())
        assert loaded == first.messages
        second = await agent.run("and doubled?", history=loaded)
    assert second.output == "6"
    sent = server.requests[2]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[0]["content"] == "Do sums."  # instructions are not duplicated
    assert sent[2]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
