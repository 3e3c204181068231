"""Repeated calls: a call that repeats an earlier successful one is answered from it, not run
again, and a turn of nothing but repeats asks the model for its answer. Whole runs over the fake
server (real request building and parsing)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel
from support.prompted_requests import PROMPTED

from agentloop import Agent, Limits, TextDelta, ToolMessage, ToolRetry, UsageLimitExceeded, tool
from agentloop._wire.profiles import OPTIMISTIC_PROFILE
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@tool
def lookup(city: str) -> str:
    """The population of a city."""
    RAN.append(city)
    return f"{city}: 500000"


@tool(rerun=True)
def roll(sides: int) -> int:
    """Roll a die."""
    RAN.append(f"roll{sides}")
    return len(RAN)


@tool
def flaky(city: str) -> str:
    """Fails the first time."""
    RAN.append(city)
    if len(RAN) == 1:
        raise ToolRetry("try again")
    return "ok"


def answers(messages: list[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def choices(server: FakeServer) -> list[Any]:
    return [body.get("tool_choice") for body in server.requests]


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_a_repeat_gets_the_earlier_result_and_the_answer_is_asked_for() -> None:
    again = tool_call(("lookup", {"city": "Porto"}))
    with FakeServer([again, tool_call(("lookup", {"city": "Porto"})), reply("Porto")]) as server:
        agent = Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup])
        result = await agent.run("How many live in Porto?")
    assert RAN == ["Porto"]
    first, repeat = answers(result.messages)
    assert first.content == "Porto: 500000"
    assert repeat.content.endswith("\nPorto: 500000") and "not run again" in repeat.content
    assert not repeat.is_error
    assert choices(server) == ["auto", "auto", "none"]
    assert result.output == "Porto" and result.usage.tool_calls == 2


async def test_arguments_are_compared_as_json_not_as_text() -> None:
    script = [
        tool_call(("lookup", '{"city": "Porto"}')),
        tool_call(("lookup", '{ "city":"Porto" }')),
        reply("done"),
    ]
    with FakeServer(script) as server:
        await Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup]).run("go")
    assert RAN == ["Porto"]


async def test_a_tool_marked_rerun_runs_every_time() -> None:
    script = [tool_call(("roll", {"sides": 6})), tool_call(("roll", {"sides": 6})), reply("ok")]
    with FakeServer(script) as server:
        result = await Agent(server.model(OPTIMISTIC_PROFILE), tools=[roll]).run("roll twice")
    assert RAN == ["roll6", "roll6"]
    assert [a.content for a in answers(result.messages)] == ["1", "2"]
    assert choices(server) == ["auto", "auto", "auto"]


async def test_a_failed_call_runs_again() -> None:
    again = tool_call(("flaky", {"city": "Oslo"}))
    with FakeServer([again, again, reply("ok")]) as server:
        result = await Agent(server.model(OPTIMISTIC_PROFILE), tools=[flaky]).run("go")
    assert RAN == ["Oslo", "Oslo"]
    assert [a.is_error for a in answers(result.messages)] == [True, False]


async def test_identical_calls_of_one_turn_both_run() -> None:
    twice = tool_call(("lookup", {"city": "Rome"}), ("lookup", {"city": "Rome"}))
    with FakeServer([twice, reply("ok")]) as server:
        await Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup]).run("go")
    assert RAN == ["Rome", "Rome"]


async def test_a_turn_with_a_new_call_leaves_the_model_free_to_call_more() -> None:
    script = [
        tool_call(("lookup", {"city": "Rome"})),
        tool_call(("lookup", {"city": "Rome"}), ("lookup", {"city": "Bern"})),
        reply("ok"),
    ]
    with FakeServer(script) as server:
        await Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup]).run("go")
    assert RAN == ["Rome", "Bern"]
    assert choices(server) == ["auto", "auto", "auto"]


async def test_calls_of_the_history_are_not_reused() -> None:
    with FakeServer([tool_call(("lookup", {"city": "Rome"})), reply("ok")]) as server:
        agent = Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup])
        first = await agent.run("go")
        server.add(tool_call(("lookup", {"city": "Rome"})), reply("ok"))
        await agent.run("again, please", history=first.messages)
    assert RAN == ["Rome", "Rome"]


async def test_the_repetition_guard_still_ends_a_model_that_ignores_the_request() -> None:
    again = tool_call(("lookup", {"city": "Lima"}))
    with FakeServer([again] * 3) as server:
        agent = Agent(
            server.model(OPTIMISTIC_PROFILE),
            tools=[lookup],
            limits=Limits(max_repeated_calls=2),
        )
        with pytest.raises(UsageLimitExceeded) as info:
            await agent.run("go")
    assert info.value.limit == "max_repeated_calls"
    assert RAN == ["Lima"]
    assert choices(server) == ["auto", "auto", "none"]  # the server ignored "none"


class City(BaseModel):
    name: str
    population: int


async def test_in_tool_output_mode_the_output_tool_is_asked_for() -> None:
    profile = OPTIMISTIC_PROFILE.replace(response_format="none")
    final = tool_call(("final_result", {"name": "Porto", "population": 5}))
    again = tool_call(("lookup", {"city": "Porto"}))
    with FakeServer([again, tool_call(("lookup", {"city": "Porto"})), final]) as server:
        agent = Agent(server.model(profile), tools=[lookup], output_type=City)
        result = await agent.run("Porto?")
    assert result.output == City(name="Porto", population=5)
    named = {"type": "function", "function": {"name": "final_result"}}
    assert choices(server) == ["required", "required", named]


async def test_prompted_tools_ask_for_the_answer_in_the_prompt() -> None:
    text = json.dumps({"tool_calls": [{"name": "lookup", "arguments": {"city": "Oslo"}}]})
    script = [reply(text), reply(text), reply(json.dumps({"answer": "Oslo has 500000."}))]
    with FakeServer(script) as server:
        result = await Agent(server.model(PROMPTED), tools=[lookup]).run("Oslo?")
    assert RAN == ["Oslo"]
    assert result.output == "Oslo has 500000."
    last = server.requests[-1]
    assert "You can call tools" not in json.dumps(last["messages"])
    assert last["response_format"]["json_schema"]["schema"]["required"] == ["answer"]


async def test_a_streamed_run_reuses_too() -> None:
    again = tool_call(("lookup", {"city": "Kyiv"}))
    with FakeServer([again, tool_call(("lookup", {"city": "Kyiv"})), reply("Kyiv")]) as server:
        agent = Agent(server.model(OPTIMISTIC_PROFILE), tools=[lookup])
        async with agent.run_stream("go") as stream:
            texts = [e.text async for e in stream if isinstance(e, TextDelta)]
    assert RAN == ["Kyiv"] and "".join(texts) == "Kyiv"
    assert choices(server)[-1] == "none"
