"""The start of a run: a loaded history is repaired before it is sent."""

from __future__ import annotations

import pytest

from agentloop import (
    Agent,
    AssistantMessage,
    SystemMessage,
    ToolCall,
    UserMessage,
    messages_from_json,
    messages_to_json,
)
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


async def test_loaded_history_is_repaired_before_sending() -> None:
    broken = [
        SystemMessage("old"),
        UserMessage("go"),
        AssistantMessage(tool_calls=(ToolCall("x", "add", '{"a":1,"b":1}'),)),
    ]
    with FakeServer([reply("fine")]) as server:
        await Agent(server.model()).run(
            "continue", history=messages_from_json(messages_to_json(broken))
        )
    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3]["tool_call_id"] == "x"
