"""The durable seam: model requests and tool calls as steps of an engine, replayed from records.

The engine here keeps its records in memory; `agentloop.durable_dbos` (tests/scale) is the real one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from agentloop import (
    Agent,
    AssistantMessage,
    ModelResponse,
    RequestUsage,
    RunContext,
    ToolRetry,
    UsageError,
    tool,
)
from agentloop._durable import (
    DurableModel,
    StepKind,
    durable_agent,
    response_from_json,
    response_to_json,
)
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


class MemoryEngine:
    """Runs steps and records their results; with `replay`, answers from the records instead."""

    def __init__(self, replay: list[tuple[str, Any]] | None = None) -> None:
        self.records: list[tuple[str, Any]] = []
        self._replay = list(replay or [])

    async def step(self, kind: StepKind, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        label = f"{kind}:{name}"
        if self._replay:
            recorded_label, value = self._replay.pop(0)
            assert recorded_label == label
        else:
            value = await call()
        json.dumps(value)  # a step's value must be JSON
        self.records.append((label, value))
        return value


class Doc(BaseModel):
    city: str
    celsius: float


ran: list[str] = []


@tool
def weather(city: str) -> dict[str, Any]:
    """The weather in a city.

    Args:
        city: the city.
    """
    ran.append(city)
    return {"city": city, "celsius": 21.5}


def _script() -> list[Any]:
    return [tool_call(("weather", {"city": "Lisbon"})), reply({"city": "Lisbon", "celsius": 21.5})]


async def test_a_replay_runs_no_step_again_and_ends_the_same() -> None:
    ran.clear()
    engine = MemoryEngine()
    with FakeServer(_script()) as server:
        agent = durable_agent(Agent(server.model(), tools=[weather], output_type=Doc), engine)
        first = await agent.run("Lisbon?")
    labels = [label for label, _ in engine.records]
    assert labels == ["model:fake-model", "tool:weather#call_0_weather", "model:fake-model"]
    assert ran == ["Lisbon"]

    again = MemoryEngine(replay=engine.records)
    with FakeServer([]) as idle:  # a replay sends no request: the script stays empty
        agent = durable_agent(Agent(idle.model(), tools=[weather], output_type=Doc), again)
        second = await agent.run("Lisbon?")
    assert ran == ["Lisbon"]
    assert second.output == first.output == Doc(city="Lisbon", celsius=21.5)
    assert second.messages == first.messages
    assert second.usage == first.usage


async def test_tool_outcomes_are_recorded_as_json() -> None:
    @tool
    def picky(n: int, ctx: RunContext[Any]) -> str:
        """Only likes 2.

        Args:
            n: a number.
        """
        assert ctx.tool_name == "picky"
        if n == 1:
            raise ToolRetry("try 2")
        if n == 3:
            raise ValueError("three is right out")
        return f"ok {n} {ctx.deps}"

    @tool(timeout=0.05)
    async def slow() -> str:
        """Never in time."""
        await anyio.sleep(10)
        return "late"

    engine = MemoryEngine()
    script = [
        tool_call(("picky", {"n": 1}), ("picky", {"n": 2}), ("picky", {"n": 3}), ("slow", {})),
        reply("done"),
    ]
    with FakeServer(script) as server:
        agent = durable_agent(Agent(server.model(), tools=[picky, slow]), engine)
        result = await agent.run("go", deps="D")
    tools = {label: value for label, value in engine.records if label.startswith("tool:")}
    assert tools == {
        "tool:picky#call_0_picky": {"retry": "try 2"},
        "tool:picky#call_1_picky": {"ok": "ok 2 D"},
        "tool:picky#call_2_picky": {"error": "ValueError: three is right out"},
        "tool:slow#call_3_slow": {"error": "TimeoutError: the tool timed out after 0.05 s"},
    }
    answers = [m.content for m in result.messages if m.role == "tool"]
    assert answers[0] == "try 2"
    assert answers[1] == "ok 2 D"
    assert "ToolStepError: ValueError: three is right out" in answers[2]
    assert "timed out after 0.05 s" in answers[3]


async def test_durable_agent_keeps_the_settings_and_refuses_streams() -> None:
    with FakeServer([]) as server:
        plain = Agent(server.model(), tools=[weather], instructions="hi", tool_concurrency=3)
        agent = durable_agent(plain, MemoryEngine())
        assert isinstance(agent.model, DurableModel)
        assert agent.instructions == "hi"
        assert agent.tool_concurrency == 3
        assert not isinstance(plain.model, DurableModel)
        with pytest.raises(UsageError, match="already durable"):
            durable_agent(agent, MemoryEngine())

        async def consume() -> None:
            async with agent.run_stream("x") as stream:
                async for _ in stream:
                    pass

        with pytest.raises(UsageError, match="do not stream"):
            await consume()


def test_responses_round_trip_through_json() -> None:
    from agentloop import AssistantMessage, ModelResponse, RequestUsage, ToolCall

    response = ModelResponse(
        AssistantMessage("hi", (ToolCall("c1", "f", '{"a": 1}'),), reasoning={"reasoning": "r"}),
        RequestUsage(3, 4, cost=0.5),
        "tool_calls",
        model="m",
        extra={"x": [1, 2]},
        latency=0.25,
    )
    data = response_to_json(response)
    assert json.loads(json.dumps(data)) == data
    assert response_from_json(data) == response


def test_the_flag_round_trips_through_durable_json() -> None:
    response = ModelResponse(AssistantMessage("hi"), RequestUsage(reported=False))
    data = response_to_json(response)
    assert data["usage"]["reported"] is False
    assert response_from_json(json.loads(json.dumps(data))) == response
    old = dict(data, usage={k: v for k, v in data["usage"].items() if k != "reported"})
    assert response_from_json(old).usage.reported  # data written before the field: reported
