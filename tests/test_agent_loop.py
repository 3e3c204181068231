"""The agent loop through a function model: tool rounds, dispatch rules, errors, limits."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from agentloop import (
    Agent,
    AssistantMessage,
    Limits,
    RunContext,
    ToolCall,
    ToolExecutionError,
    ToolMessage,
    ToolRetry,
    UsageError,
    UsageLimitExceeded,
    tool,
)
from agentloop.testing import FunctionModel, call, calls, last_tool_results

pytestmark = pytest.mark.anyio


def script(*replies: Any) -> FunctionModel:
    """A function model answering with `replies` in order, recording what it saw."""
    queue = list(replies)
    seen: list[Any] = []

    def answer(messages: list[Any], info: Any) -> Any:
        seen.append((messages, info))
        item = queue.pop(0)
        return item(messages) if callable(item) else item

    model = FunctionModel(answer)
    model.seen = seen  # type: ignore[attr-defined]
    return model


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


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


async def test_parallel_calls_run_concurrently_and_answer_in_call_order() -> None:
    started = {"slow": anyio.Event(), "fast": anyio.Event()}

    @tool
    async def slow(x: int) -> str:
        started["slow"].set()
        with anyio.fail_after(2):
            await started["fast"].wait()  # only returns if `fast` runs at the same time
        await anyio.sleep(0.01)
        return f"slow{x}"

    @tool
    async def fast(x: int) -> str:
        started["fast"].set()
        with anyio.fail_after(2):
            await started["slow"].wait()
        return f"fast{x}"

    turn = calls(call("slow", {"x": 1}, id="a"), call("fast", {"x": 2}, id="b"))
    result = await Agent(script(turn, "done"), tools=[slow, fast]).run("go")
    answers = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.content) for m in answers] == [("a", "slow1"), ("b", "fast2")]


async def test_sequential_tools_run_alone_in_order() -> None:
    log: list[str] = []

    @tool(sequential=True)
    async def write(key: str) -> str:
        log.append(f"start {key}")
        await anyio.sleep(0.01)
        log.append(f"end {key}")
        return key

    turn = calls(call("write", {"key": "x"}, id="1"), call("write", {"key": "y"}, id="2"))
    await Agent(script(turn, "ok"), tools=[write]).run("go")
    assert log == ["start x", "end x", "start y", "end y"]


async def test_sync_tools_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    @tool
    def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    await Agent(script(calls(call("where", {})), "done"), tools=[where]).run("go")
    assert seen and seen[0] != loop_thread


async def test_invalid_arguments_go_back_to_the_model_then_succeed() -> None:
    model = script(
        calls(call("add", {"a": "two", "b": 3}, id="bad")),
        calls(call("add", {"a": 2, "b": 3}, id="good")),
        "5",
    )
    result = await Agent(model, tools=[add]).run("2+3")
    bad = next(m for m in result.messages if isinstance(m, ToolMessage) and m.tool_call_id == "bad")
    assert bad.is_error
    assert "a" in bad.content and "integer" in bad.content
    assert result.usage.retries == 1
    assert result.output == "5"


async def test_retry_budget_exhausted_ends_the_run_with_transcript() -> None:
    bad = calls(call("add", {"a": "x", "b": 1}, id="r"))
    with pytest.raises(ToolExecutionError) as caught:
        await Agent(script(bad, bad, bad), tools=[add]).run("go")
    err = caught.value
    assert "retry budget" in str(err)
    assert err.usage is not None and err.usage.requests == 3
    assert isinstance(err.messages[-1], ToolMessage)  # the last call was answered too


async def test_unknown_tool_lists_valid_names() -> None:
    model = script(calls(call("multiply", {"a": 1}, id="u")), "sorry")
    result = await Agent(model, tools=[add]).run("go")
    answer = result.messages[-2]
    assert isinstance(answer, ToolMessage) and answer.is_error
    assert "Unknown tool 'multiply'" in answer.content and "add" in answer.content


async def test_tool_retry_message_reaches_the_model() -> None:
    @tool
    def lookup(city: str) -> str:
        raise ToolRetry(f"no city named {city}; try a capital")

    result = await Agent(
        script(calls(call("lookup", {"city": "Atlantis"})), "ok"), tools=[lookup]
    ).run("go")
    assert result.messages[-2].content == "no city named Atlantis; try a capital"  # type: ignore[union-attr]


async def test_tool_exception_goes_back_and_is_logged() -> None:
    @tool
    def boom() -> str:
        raise KeyError("missing")

    with capture_logs() as logs:
        result = await Agent(script(calls(call("boom", {})), "handled"), tools=[boom]).run("go")
    answer = result.messages[-2]
    assert isinstance(answer, ToolMessage) and answer.is_error
    assert answer.content == "Tool 'boom' failed: KeyError: 'missing'"
    assert "Traceback" not in answer.content
    assert any(e["event"] == "tool_error" and e["tool"] == "boom" for e in logs)


async def test_tool_errors_raise_option_answers_every_call() -> None:
    @tool
    async def boom() -> str:
        raise RuntimeError("kaput")

    @tool
    async def sleepy() -> str:
        await anyio.sleep(10)
        return "never"

    turn = calls(call("sleepy", {}, id="s"), call("boom", {}, id="b"))
    agent = Agent(script(turn), tools=[boom, sleepy], tool_errors="raise")
    with anyio.fail_after(5), pytest.raises(ToolExecutionError) as caught:
        await agent.run("go")
    err = caught.value
    assert err.tool_name == "boom"
    assert isinstance(err.__cause__, RuntimeError)
    answers = {m.tool_call_id: m for m in err.messages if isinstance(m, ToolMessage)}
    assert set(answers) == {"s", "b"}
    assert "cancelled" in answers["s"].content


async def test_tool_timeout() -> None:
    @tool(timeout=0.05)
    async def stuck() -> str:
        await anyio.sleep(5)
        return "never"

    with anyio.fail_after(3):
        result = await Agent(script(calls(call("stuck", {})), "ok"), tools=[stuck]).run("go")
    assert result.messages[-2].content == "Tool 'stuck' timed out after 0.05 s."  # type: ignore[union-attr]


class Weather(BaseModel):
    city: str
    degrees: float


@dataclass
class Point:
    x: int
    y: int


async def test_results_become_json_and_long_results_are_truncated() -> None:
    @tool
    def weather() -> Weather:
        return Weather(city="Oslo", degrees=-3.5)

    @tool
    def point() -> Point:
        return Point(1, 2)

    @tool
    def big() -> str:
        return "x" * 500

    turn = calls(call("weather", {}, id="w"), call("point", {}, id="p"), call("big", {}, id="b"))
    agent = Agent(script(turn, "ok"), tools=[weather, point, big], max_tool_result_chars=100)
    result = await agent.run("go")
    answers = {m.tool_call_id: m.content for m in result.messages if isinstance(m, ToolMessage)}
    assert json.loads(answers["w"]) == {"city": "Oslo", "degrees": -3.5}
    assert json.loads(answers["p"]) == {"x": 1, "y": 2}
    assert answers["b"].startswith("x" * 100)
    assert answers["b"].endswith("[... truncated: 400 of 500 characters not shown]")


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


async def test_limits_max_requests_and_turns() -> None:
    loop_forever = calls(call("add", {"a": 1, "b": 1}))

    def again(_: Any) -> AssistantMessage:
        return AssistantMessage(
            tool_calls=(ToolCall(f"id{next(counter)}", "add", '{"a": 1, "b": 2}'),)
        )

    counter = iter(range(100))
    with pytest.raises(UsageLimitExceeded) as caught:
        await Agent(script(*[again] * 10), tools=[add], limits=Limits(max_requests=3)).run("go")
    assert caught.value.limit == "max_requests"
    assert caught.value.usage is not None and caught.value.usage.requests == 3
    with pytest.raises(UsageLimitExceeded) as caught:
        await Agent(script(*[again] * 10), tools=[add], max_turns=2).run("go")
    assert caught.value.limit == "max_turns"
    assert loop_forever.tool_calls  # the fixture itself is well-formed


async def test_repetition_guard() -> None:
    same = calls(call("add", {"a": 1, "b": 1}))
    agent = Agent(script(same, same, same), tools=[add], limits=Limits(max_repeated_calls=2))
    with pytest.raises(UsageLimitExceeded) as caught:
        await agent.run("go")
    assert caught.value.limit == "max_repeated_calls"
    last = caught.value.messages[-1]
    assert isinstance(last, ToolMessage) and last.content.startswith("Not run")


async def test_token_limits() -> None:
    with pytest.raises(UsageLimitExceeded) as caught:
        await Agent(script("x" * 400), limits=Limits(max_output_tokens=10)).run("go")
    assert caught.value.limit == "max_output_tokens"
    assert caught.value.messages[-1].role == "assistant"


async def test_agent_is_immutable_and_checks_tools() -> None:
    agent = Agent(script("x"), tools=[add])
    with pytest.raises(AttributeError):
        agent.tools = ()  # type: ignore[misc]
    with pytest.raises(UsageError, match="two tools are named 'add'"):
        Agent(script("x"), tools=[add, add])
    with pytest.raises(UsageError, match="needs a prompt"):
        await agent.run()


def test_run_sync_is_a_thin_wrapper() -> None:
    result = Agent(script("sync hello")).run_sync("hi")
    assert result.output == "sync hello"


async def test_run_sync_inside_a_loop_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="inside a running event loop"):
        Agent(script("x")).run_sync("hi")


async def test_logs_are_bound_to_a_run_id() -> None:
    with capture_logs() as logs:
        result = await Agent(script(calls(call("add", {"a": 1, "b": 2})), "3"), tools=[add]).run(
            "go"
        )
    events = [e["event"] for e in logs]
    assert events[0] == "run_start" and events[-1] == "run_end"
    assert "model_request" in events and "tool_call" in events
    assert {e.get("run_id") for e in logs if e["event"] != "tool_strict_mode"} == {result.run_id}
