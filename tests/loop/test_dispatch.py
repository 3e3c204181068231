"""Tool dispatch: concurrency, ordering, retries, errors, timeouts, names small models decorate."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs
from support.scripted import add, flaky, script
from support.small_models import ANSWER, FORCED, RAN, SMALL, Weather, get_weather, run

from agentloop import (
    Agent,
    RunContext,
    ToolCall,
    ToolExecutionError,
    ToolMessage,
    ToolRetry,
    Usage,
    tool,
)
from agentloop._loop.dispatch import DispatchConfig, ToolTurn
from agentloop.testing import FakeServer, call, calls, reply, tool_call

pytestmark = pytest.mark.anyio


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


class Reading(BaseModel):
    city: str
    degrees: float


@dataclass
class Point:
    x: int
    y: int


async def test_results_become_json_and_long_results_are_truncated() -> None:
    @tool
    def weather() -> Reading:
        return Reading(city="Oslo", degrees=-3.5)

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


@tool
async def slow(n: int) -> int:
    """Never finishes in time."""
    await anyio.sleep(10)
    return n


def _context(retries: dict[str, int]) -> RunContext[Any]:
    return RunContext(None, Usage(), [], "run", retries)


async def test_a_tool_turn_returns_its_answers_and_changes_nothing_of_the_run() -> None:
    ctx = _context({"flaky": 1})
    config = DispatchConfig({"flaky": flaky})
    turn_calls = [ToolCall("a", "flaky", '{"n": 1}'), ToolCall("b", "flaky", '{"n": 2}')]
    turn = ToolTurn(turn_calls, config, ctx, ctx.retries)
    with pytest.raises(ToolExecutionError, match="retry budget"):
        await turn.run()  # 1 used before + 2 here > 2: the budget is spent in this turn
    outcome = turn.outcome()
    assert [a.tool_call_id for a in outcome.answers] == ["a", "b"]
    assert all(a.is_error for a in outcome.answers)
    assert outcome.retried == ("flaky", "flaky")
    assert ctx.retries == {"flaky": 1} and ctx.usage.retries == 0 and ctx.messages == []


async def test_a_cancelled_turn_still_answers_every_call() -> None:
    ctx = _context({})
    turn = ToolTurn([ToolCall("a", "slow", '{"n": 1}')], DispatchConfig({"slow": slow}), ctx, {})
    with anyio.move_on_after(0.05):
        await turn.run()
    (answer,) = turn.outcome().answers
    assert answer.tool_call_id == "a" and answer.is_error and "cancelled" in answer.content


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def sent_calls(body: dict[str, Any]) -> list[str]:
    """The tool names of the assistant turns in a request body."""
    return [
        call["function"]["name"]
        for message in body["messages"]
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or ()
    ]


DECORATED = [
    "functions.get_weather",
    "get_weather:",
    " get_weather ",
    '"get_weather"',
    "tools.get_weather",
    "function.get_weather",
    "`get_weather`",
    "get_weather()",
    "Get-Weather",
]


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", DECORATED)
async def test_a_decorated_name_runs_the_tool_under_its_own_name(name: str, streamed: bool) -> None:
    script = [tool_call((name, {"city": "Paris"})), reply("It is sunny.")]
    with FakeServer(script) as server:
        agent = Agent(server.model(SMALL), tools=[get_weather])
        result = await run(agent, streamed)
    assert RAN == ["get_weather(Paris)"]
    assert result.output == "It is sunny."
    assert sent_calls(server.requests[1]) == ["get_weather"]
    assert server.requests[1]["messages"][-1]["content"] == "sunny in Paris"
    call = result.messages[-3].tool_calls[0]  # type: ignore[union-attr]
    assert call.name == "get_weather"
    assert call.id == "call_0_" + name  # only the name changes
    answer = result.messages[-2]
    assert answer.role == "tool" and answer.name == "get_weather" and not answer.is_error


async def test_the_rename_is_logged_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agentloop")
    script = [tool_call(("functions.get_weather", {"city": "Oslo"})), reply("cold")]
    with FakeServer(script) as server:
        result = await Agent(server.model(SMALL), tools=[get_weather]).run("weather?")
    renames = [r for r in caplog.records if "tool_name_normalized" in r.getMessage()]
    assert len(renames) == 1 and renames[0].levelno == logging.DEBUG
    text = renames[0].getMessage()
    assert "'functions.get_weather'" in text and "tool='get_weather'" in text
    assert result.run_id in text


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("profile", [SMALL, FORCED], ids=["not-forced", "forced"])
async def test_a_decorated_output_tool_name_gives_the_output(streamed: bool, profile: Any) -> None:
    with FakeServer([tool_call(("functions.final_result", ANSWER))]) as server:
        result = await run(Agent(server.model(profile), output_type=Weather), streamed)
    assert result.output == Weather(city="Paris", temp=21)
    assert len(server.requests) == 1
    assert result.messages[-2].tool_calls[0].name == "final_result"  # type: ignore[union-attr]
    assert result.messages[-1].role == "tool" and result.messages[-1].name == "final_result"


async def test_a_streamed_decorated_output_tool_still_gives_partial_output() -> None:
    from agentloop._events import PartialOutput

    with FakeServer([tool_call(("functions.final_result", ANSWER))]) as server:
        agent = Agent(server.model(SMALL), output_type=Weather)
        async with agent.run_stream("weather?") as stream:
            events = [event async for event in stream]
    partials = [e.value for e in events if isinstance(e, PartialOutput)]
    assert partials and (partials[-1].city, partials[-1].temp) == ("Paris", 21)


async def test_an_exact_name_wins_over_a_normalised_one() -> None:
    @tool(name="GET_WEATHER")
    def loud(city: str) -> str:
        """The weather, loudly."""
        RAN.append(f"GET_WEATHER({city})")
        return city.upper()

    script = [tool_call(("GET_WEATHER", {"city": "Rome"})), reply("ok")]
    with FakeServer(script) as server:
        await Agent(server.model(SMALL), tools=[get_weather, loud]).run("weather?")
    assert RAN == ["GET_WEATHER(Rome)"]
    assert sent_calls(server.requests[1]) == ["GET_WEATHER"]


async def test_a_name_matching_two_tools_is_not_guessed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agentloop")

    @tool(name="get-weather")
    def dashed(city: str) -> str:
        """The weather, dashed."""
        RAN.append(f"get-weather({city})")
        return city

    script = [tool_call(("functions.Get_Weather", {"city": "Rome"})), reply("ok")]
    with FakeServer(script) as server:
        result = await Agent(server.model(SMALL), tools=[get_weather, dashed]).run("weather?")
    assert RAN == []
    assert sent_calls(server.requests[1]) == ["functions.Get_Weather"]
    answer = result.messages[-2]
    assert answer.role == "tool" and answer.is_error
    assert "Unknown tool 'functions.Get_Weather'" in answer.content
    assert not [r for r in caplog.records if "tool_name_normalized" in r.getMessage()]


async def test_an_unknown_name_stays_unknown() -> None:
    script = [tool_call(("functions.get_time", {})), reply("no idea")]
    with FakeServer(script) as server:
        result = await Agent(server.model(SMALL), tools=[get_weather]).run("time?")
    assert sent_calls(server.requests[1]) == ["functions.get_time"]
    assert result.messages[-2].is_error  # type: ignore[union-attr]
