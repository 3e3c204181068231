"""Replies small real models give (SmolLM2-135M on llama.cpp): JSON text instead of the output
tool, decorated tool names, a user tool named like the output tool. Through the fake server."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from agentloop import (
    DEFAULT_PROFILE,
    LLAMA_CPP_PROFILE,
    OPENAI_PROFILE,
    Agent,
    OutputValidationError,
    RunResult,
    ToolRetry,
    UsageError,
    tool,
)
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio

# The output tool cannot be forced; tool results go as tool messages (tested elsewhere).
SMALL = LLAMA_CPP_PROFILE.replace(output_mode="tool", tool_results_as_text=False)
FORCED = OPENAI_PROFILE.replace(output_mode="tool")
ANSWER = {"city": "Paris", "temp": 21}
RAN: list[str] = []


class Weather(BaseModel):
    city: str
    temp: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    RAN.append(f"get_weather({city})")
    return f"sunny in {city}"


@tool
def final_result(note: str) -> str:
    """A user's tool that happens to carry the output tool's name."""
    RAN.append(f"final_result({note})")
    return f"noted: {note}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def run(agent: Agent[Any], streamed: bool) -> RunResult[Any]:
    if not streamed:
        return await agent.run("weather?")
    async with agent.run_stream("weather?") as stream:
        async for _ in stream:
            pass
    return stream.result


def sent_calls(body: dict[str, Any]) -> list[str]:
    """The tool names of the assistant turns in a request body."""
    return [
        call["function"]["name"]
        for message in body["messages"]
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or ()
    ]


# --- 1. structured output as JSON text when the output tool is not forced --------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    "text",
    [
        '{"city": "Paris", "temp": 21}',
        '```json\n{"city": "Paris", "temp": 21}\n```',
        '  {"temp": 21, "city": "Paris"}\n',
    ],
    ids=["json", "fenced", "spaced"],
)
async def test_json_text_is_accepted_when_the_output_tool_is_not_forced(
    text: str, streamed: bool
) -> None:
    with FakeServer([reply(text)]) as server:
        result = await run(Agent(server.model(SMALL), output_type=Weather), streamed)
    assert result.output == Weather(city="Paris", temp=21)
    assert len(server.requests) == 1
    body = server.requests[0]
    assert body.get("tool_choice") != "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["final_result"]
    assert result.usage.retries == 0
    assert result.messages[-1].role == "assistant"


async def test_the_default_profile_also_takes_json_text() -> None:
    with FakeServer([reply(ANSWER)]) as server:
        result = await Agent(server.model(DEFAULT_PROFILE), output_type=Weather).run("weather?")
    assert result.output.city == "Paris"
    assert len(server.requests) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    "text",
    ["It is sunny in Paris.", '{"city": "Paris"}', '{"city": "Paris", "temp": "warm"}', "   "],
    ids=["prose", "missing-field", "wrong-type", "blank"],
)
async def test_text_that_is_not_valid_output_is_re_asked_to_call_the_tool(
    text: str, streamed: bool
) -> None:
    script = [reply(text), tool_call(("final_result", ANSWER))]
    with FakeServer(script) as server:
        result = await run(Agent(server.model(SMALL), output_type=Weather), streamed)
    assert result.output == Weather(city="Paris", temp=21)
    assert len(server.requests) == 2
    re_ask = server.requests[1]["messages"][-1]
    assert re_ask["role"] == "user"
    assert re_ask["content"].startswith("Call the `final_result` tool to give the final answer.")
    assert result.usage.retries == 1


async def test_text_that_never_becomes_valid_output_raises() -> None:
    with FakeServer([reply("sunny")] * 3) as server:
        agent = Agent(server.model(SMALL), output_type=Weather, output_retries=2)
        with pytest.raises(OutputValidationError) as caught:
            await agent.run("weather?")
    assert caught.value.raw == "sunny"
    assert "final_result" in caught.value.errors
    assert len(server.requests) == 3


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_a_forced_output_tool_still_re_asks_json_text(streamed: bool) -> None:
    script = [reply(ANSWER), tool_call(("final_result", ANSWER))]
    with FakeServer(script) as server:
        result = await run(Agent(server.model(FORCED), output_type=Weather), streamed)
    assert result.output.temp == 21
    assert len(server.requests) == 2
    assert server.requests[0]["tool_choice"] == "required"
    assert "final_result" in server.requests[1]["messages"][-1]["content"]
    assert result.usage.retries == 1


async def test_output_validators_judge_json_text_too() -> None:
    def not_too_hot(value: Weather) -> Weather:
        if value.temp > 40:
            raise ToolRetry("that is too hot to be true")
        return value

    script = [reply({"city": "Paris", "temp": 99}), reply(ANSWER)]
    with FakeServer(script) as server:
        agent = Agent(server.model(SMALL), output_type=Weather, output_validators=[not_too_hot])
        result = await agent.run("weather?")
    assert result.output.temp == 21
    re_ask = server.requests[1]["messages"][-1]["content"]
    assert "too hot" in re_ask and "final_result" in re_ask


async def test_json_text_next_to_a_tool_call_runs_the_tool_first() -> None:
    script = [tool_call(("get_weather", {"city": "Paris"}), content='{"x": 1}'), reply(ANSWER)]
    with FakeServer(script) as server:
        agent = Agent(server.model(SMALL), output_type=Weather, tools=[get_weather])
        result = await agent.run("weather?")
    assert RAN == ["get_weather(Paris)"]
    assert result.output.city == "Paris"
    assert len(server.requests) == 2


# --- 2. decorated tool names -----------------------------------------------------------------

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


# --- 3. final_result is reserved only where the output tool is offered -----------------------


def test_an_explicit_tool_mode_reserves_the_name_at_construction() -> None:
    with FakeServer() as server, pytest.raises(UsageError, match="reserved for the output"):
        Agent(server.model(), output_type=Weather, output_mode="tool", tools=[final_result])
    assert server.requests == []


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("profile", [SMALL, DEFAULT_PROFILE], ids=["llama-tool", "default"])
async def test_a_profile_giving_tool_mode_reserves_the_name_before_any_request(
    profile: Any, streamed: bool
) -> None:
    with FakeServer() as server:
        agent = Agent(server.model(profile), output_type=Weather, tools=[final_result])
        with pytest.raises(UsageError, match="reserved for the output"):
            await run(agent, streamed)
    assert server.requests == []


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    "options",
    [
        {},  # text output: the output tool is never offered
        {"output_mode": "tool"},  # still text output, so still no output tool
        {"output_type": Weather, "output_mode": "native"},
        {"output_type": Weather, "output_mode": "prompted"},
    ],
    ids=["text", "text-tool-mode", "native", "prompted"],
)
async def test_a_tool_named_final_result_runs_where_no_output_tool_is_offered(
    options: dict[str, Any], streamed: bool
) -> None:
    last = reply(ANSWER) if "output_type" in options else reply("noted")
    script = [tool_call(("final_result", {"note": "hi"})), last]
    with FakeServer(script) as server:
        agent = Agent(server.model(SMALL), tools=[final_result], **options)
        result = await run(agent, streamed)
    assert RAN == ["final_result(hi)"]
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == ["final_result"]
    assert server.requests[1]["messages"][-1]["content"] == "noted: hi"
    expected = Weather(city="Paris", temp=21) if "output_type" in options else "noted"
    assert result.output == expected
