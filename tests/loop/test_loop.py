"""The agent loop through a function model: tool rounds, the run context, run-bound logs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from structlog.testing import capture_logs
from support.scripted import add, script

from agentloop import Agent, RunContext, ToolMessage, tool
from agentloop.testing import call, calls, last_tool_results

pytestmark = pytest.mark.anyio


async def test_text_answer_without_tools() -> None:
    agent = Agent(script("hello there"), instructions="Be brief.")
    result = await agent.run("hi")
    assert result.output == "hello there"
    assert [m.role for m in result.messages] == ["system", "user", "assistant"]
    assert result.messages[0].content == "Be brief."  # type: ignore[union-attr]
    assert result.usage.requests == 1
    assert result.usage.tool_calls == 0


async def test_tool_round_then_answer() -> None:
    model = script(
        calls(call("add", {"a": 2, "b": 3}, id="c1")), lambda m: f"sum={last_tool_results(m)[0]}"
    )
    result = await Agent(model, tools=[add]).run("2+3?")
    assert result.output == "sum=5"
    tool_msg = result.messages[-2]
    assert isinstance(tool_msg, ToolMessage)
    assert (tool_msg.tool_call_id, tool_msg.content, tool_msg.is_error) == ("c1", "5", False)
    assert result.usage.requests == 2
    assert result.usage.tool_calls == 1
    # the tool definition reached the model, with the docstring's descriptions
    info = model.seen[0][1]  # type: ignore[attr-defined]
    definition = info.request.tools[0]
    assert definition.name == "add"
    assert definition.parameters["properties"]["a"]["description"] == "the first number"


@dataclass
class Deps:
    user: str


async def test_run_context_reaches_tools_and_instructions() -> None:
    @tool
    def whoami(ctx: RunContext[Deps]) -> str:
        return f"{ctx.deps.user} via {ctx.tool_name}"

    async def instructions(ctx: RunContext[Deps]) -> str:
        return f"The user is {ctx.deps.user}."

    model = script(calls(call("whoami", {})), lambda m: last_tool_results(m)[0])
    result = await Agent(model, tools=[whoami], instructions=instructions).run(
        "who?", deps=Deps("ada")
    )
    assert result.output == "ada via whoami"
    assert result.messages[0].content == "The user is ada."  # type: ignore[union-attr]
    definition = model.seen[0][1].request.tools[0]  # type: ignore[attr-defined]
    assert "ctx" not in definition.parameters.get("properties", {})


async def test_logs_are_bound_to_a_run_id() -> None:
    with capture_logs() as logs:
        result = await Agent(script(calls(call("add", {"a": 1, "b": 2})), "3"), tools=[add]).run(
            "go"
        )
    events = [e["event"] for e in logs]
    assert events[0] == "run_start" and events[-1] == "run_end"
    assert "model_request" in events and "tool_call" in events
    assert {e.get("run_id") for e in logs if e["event"] != "tool_strict_mode"} == {result.run_id}
