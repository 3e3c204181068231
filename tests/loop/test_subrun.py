"""Agents as tools: a sub-run inside a tool call, its spending joining the parent's."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from agentloop import (
    Agent,
    Limits,
    RequestUsage,
    RunContext,
    ToolMessage,
    UsageError,
    UsageLimitExceeded,
    lookup_model,
    tool,
)
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


def answers(messages: Sequence[object]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


async def test_the_sub_agents_output_is_the_tool_result_and_its_usage_joins() -> None:
    inner = FakeServer([reply("Lisbon is sunny.")], model_name="gpt-4o-mini")  # priced
    researcher = Agent(inner.model(), name="researcher", instructions="Research.")
    script = [tool_call(("researcher", {"prompt": "Weather in Lisbon?"})), reply("Sunny.")]
    outer = FakeServer(script, model_name="gpt-4o-mini")
    boss = Agent(outer.model(), name="boss", tools=[researcher.as_tool()])
    result = await boss.run("Should I pack an umbrella?")
    assert result.output == "Sunny."
    assert answers(result.messages)[0].content == "Lisbon is sunny."
    # the sub-run saw only its prompt, under its own instructions
    assert inner.requests[0]["messages"] == [
        {"role": "system", "content": "Research."},
        {"role": "user", "content": "Weather in Lisbon?"},
    ]
    tool_def = outer.requests[0]["tools"][0]["function"]
    assert tool_def["name"] == "researcher" and "prompt" in tool_def["parameters"]["properties"]
    assert result.usage.requests == 3
    by_agent = result.usage_by_agent
    assert (by_agent["boss"].requests, by_agent["researcher"].requests) == (2, 1)
    assert by_agent["boss"].input_tokens + by_agent["researcher"].input_tokens == (
        result.usage.input_tokens
    )
    price = lookup_model("gpt-4o-mini")
    assert price is not None
    parts = [RequestUsage(u.input_tokens, u.output_tokens) for u in by_agent.values()]
    assert result.cost == pytest.approx(
        sum(price.cost(part) or 0.0 for part in parts)
    )  # both agents'
    alone = await Agent(FakeServer([reply("x")], model_name="gpt-4o-mini").model()).run("x")
    assert alone.usage_by_agent == {}
    inner.assert_done()
    outer.assert_done()


async def test_the_sub_run_gets_the_parents_deps() -> None:
    seen: list[object] = []

    @tool
    def note(ctx: RunContext[str]) -> str:
        """Note the deps."""
        seen.append(ctx.deps)
        assert ctx.budget is None  # this agent runs no agents: its runs keep no budget
        return "noted"

    inner = FakeServer([tool_call(("note", {})), reply("done")])
    helper = Agent(inner.model(), name="helper", tools=[note])
    outer = FakeServer([tool_call(("helper", {"prompt": "note it"})), reply("ok")])
    await Agent(outer.model(), tools=[helper.as_tool()]).run("go", deps="the deps")
    assert seen == ["the deps"]


async def test_a_sub_run_past_its_own_limits_fails_as_the_tools_error() -> None:
    inner = FakeServer([tool_call(("lookup", {"q": "x"})), tool_call(("lookup", {"q": "y"}))])

    def lookup(q: str) -> str:
        """Look it up."""
        return q

    helper = Agent(inner.model(), name="helper", tools=[lookup], limits=Limits(max_requests=2))
    outer = FakeServer([tool_call(("helper", {"prompt": "go"})), reply("gave up")])
    result = await Agent(outer.model(), tools=[helper.as_tool()]).run("go")
    assert result.output == "gave up"
    [answer] = answers(result.messages)
    assert answer.is_error and "UsageLimitExceeded: max_requests=2" in answer.content
    assert result.usage.requests == 4  # the parent's two and the helper's two, counted
    assert result.usage_by_agent["helper"].requests == 2
    assert result.usage_by_agent["agent"].requests == 2


async def test_the_parents_limits_bound_its_sub_runs() -> None:
    inner = FakeServer([tool_call(("helper", {"prompt": "again"}))] * 3)
    helper = Agent(inner.model(), name="helper")
    outer = FakeServer([tool_call(("helper", {"prompt": "go"}))])
    boss = Agent(outer.model(), tools=[helper.as_tool()], limits=Limits(max_requests=3))
    with pytest.raises(UsageLimitExceeded, match="max_requests=3") as caught:
        await boss.run("go")
    # the helper had 2 requests left, used them and failed; the parent then had none left
    assert caught.value.usage is not None and caught.value.usage.requests == 3
    assert "max_requests=2" in answers(caught.value.messages)[0].content


async def test_cancelling_the_parent_cancels_the_sub_run() -> None:
    started = anyio.Event()

    @tool
    async def wait_forever() -> str:
        """Never returns."""
        started.set()
        await anyio.sleep_forever()
        return "never"

    inner = FakeServer([tool_call(("wait_forever", {}))])
    helper = Agent(inner.model(), name="helper", tools=[wait_forever])
    outer = FakeServer([tool_call(("helper", {"prompt": "wait"}))])
    boss = Agent(outer.model(), tools=[helper.as_tool()])
    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(boss.run, "go")
            await started.wait()
            group.cancel_scope.cancel()
    assert not scope.cancelled_caught  # cancelled at once, not by the 5 s guard


def test_as_tool_needs_a_name() -> None:
    with pytest.raises(UsageError, match="name"):
        Agent(FakeServer().model()).as_tool()
    assert Agent(FakeServer().model()).as_tool(name="x", description="Does x.").name == "x"
