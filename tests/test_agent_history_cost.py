"""History round trips and repair, cost, budgets, forced tool choice, and the fake server itself."""

from __future__ import annotations

import dataclasses

import pytest

from agentloop import (
    Agent,
    AssistantMessage,
    Limits,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageError,
    UsageLimitExceeded,
    UserMessage,
    messages_from_json,
    messages_to_json,
    repair_history,
    tool,
)
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


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


def test_repair_answers_unanswered_tool_calls() -> None:
    history = [
        UserMessage("go"),
        AssistantMessage(tool_calls=(ToolCall("a", "add", "{}"), ToolCall("b", "add", "{}"))),
        ToolMessage("a", "1"),
    ]
    repaired = repair_history(history)
    assert [type(m).__name__ for m in repaired] == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
        "ToolMessage",
    ]
    assert repaired[3].tool_call_id == "b"  # type: ignore[union-attr]
    assert repaired[3].is_error  # type: ignore[union-attr]
    assert repair_history(repaired) == repaired


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


async def test_cost_from_catalog_and_from_provider() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    with FakeServer([reply("hi", usage=usage)], model_name="openai/gpt-3.5-turbo-0613") as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    with FakeServer(
        [reply("hi", usage={**usage, "cost": 0.042})], model_name="unknown-x"
    ) as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost == pytest.approx(0.042)
    with FakeServer([reply("hi", usage=usage)], model_name="unknown-x") as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost is None  # unknown, never a silent zero


async def test_cost_budget_is_checked_after_each_request() -> None:
    usage = {"prompt_tokens": 100_000, "completion_tokens": 10, "total_tokens": 100_010}
    first = dataclasses.replace(tool_call(("add", {"a": 1, "b": 1})), usage=usage)
    with FakeServer([first], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), tools=[add], limits=Limits(max_cost=0.05))
        with pytest.raises(UsageLimitExceeded) as caught:
            await agent.run("go")
    err = caught.value
    assert err.limit == "max_cost"
    assert err.cost == pytest.approx(0.1 + 0.00002)
    assert err.usage is not None and err.usage.requests == 1


async def test_cost_budget_is_checked_before_a_request_with_an_estimate() -> None:
    with FakeServer([], model_name="gpt-4") as server:
        settings = ModelSettings(max_completion_tokens=5000)  # 5000 * $60/M = $0.30 reserved
        agent = Agent(server.model(), settings=settings, limits=Limits(max_cost=0.1))
        with pytest.raises(UsageLimitExceeded, match="max_cost") as caught:
            await agent.run("go")
    assert server.requests == []  # never paid for a request over budget
    assert caught.value.usage is not None and caught.value.usage.requests == 0


async def test_max_cost_with_unknown_price_is_a_clear_error() -> None:
    with FakeServer([reply("hi")], model_name="mystery-model") as server:
        with pytest.raises(UsageError, match="cost of 'mystery-model' is unknown"):
            await Agent(server.model(), limits=Limits(max_cost=1.0)).run("hi")


async def test_forced_tool_choice_goes_back_to_auto() -> None:
    script = [tool_call(("add", {"a": 1, "b": 2})), reply("3")]
    with FakeServer(script) as server:
        agent = Agent(server.model(), tools=[add], settings=ModelSettings(tool_choice="add"))
        await agent.run("go")
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert server.requests[1]["tool_choice"] == "auto"


async def test_settings_merge_run_over_agent() -> None:
    with FakeServer([reply("x")]) as server:
        agent = Agent(server.model(), settings=ModelSettings(temperature=0.1, seed=7))
        await agent.run("go", settings=ModelSettings(temperature=0.9))
    body = server.requests[0]
    assert (body["temperature"], body["seed"]) == (0.9, 7)


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
