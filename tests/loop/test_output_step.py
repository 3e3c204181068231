"""The output step: re-asks, refusals, truncation, output tools, JSON text from small models."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs
from support.orders import ORDER, Order
from support.scripted import add
from support.small_models import ANSWER, FORCED, RAN, SMALL, Weather, get_weather, run

from agentloop import (
    DEFAULT_PROFILE,
    Agent,
    ModelSettings,
    OutputTruncatedError,
    OutputValidationError,
    RefusalError,
    RunContext,
    ToolRetry,
    UsageError,
    tool,
)
from agentloop.testing import FakeServer, Reply, reply, tool_call

pytestmark = pytest.mark.anyio


async def test_forced_tool_choice_goes_back_to_auto() -> None:
    script = [tool_call(("add", {"a": 1, "b": 2})), reply("3")]
    with FakeServer(script) as server:
        agent = Agent(server.model(), tools=[add], settings=ModelSettings(tool_choice="add"))
        await agent.run("go")
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert server.requests[1]["tool_choice"] == "auto"


async def test_invalid_output_is_re_asked_with_the_errors() -> None:
    bad = {"customer": "Ada", "items": [{"name": "tea", "qty": "many"}]}
    with FakeServer([reply(bad), reply(ORDER)]) as server, capture_logs() as logs:
        result = await Agent(server.model(), output_type=Order).run("order?")
    retry = next(e for e in logs if e["event"] == "output_retry")
    assert retry["run_id"] == result.run_id
    assert "items.0.qty" in retry["reason"]
    assert result.output.priority == "high"
    re_ask = server.requests[1]["messages"][-1]
    assert re_ask["role"] == "user"
    assert "items.0.qty" in re_ask["content"] and "integer" in re_ask["content"]
    assert result.usage.retries == 1


async def test_output_that_never_validates_raises_with_transcript() -> None:
    with FakeServer([reply("not json")] * 3) as server:
        agent = Agent(server.model(), output_type=Order, output_retries=2)
        with pytest.raises(OutputValidationError) as caught:
            await agent.run("order?")
    err = caught.value
    assert "not valid JSON" in err.errors
    assert err.raw == "not json"
    assert err.usage is not None and err.usage.requests == 3
    assert [m.role for m in err.messages].count("assistant") == 3


async def test_tool_output_mode_uses_a_final_result_tool() -> None:
    with FakeServer([tool_call(("final_result", ORDER))]) as server:
        result = await Agent(server.model(), output_type=Order, output_mode="tool").run("order?")
    assert result.output.customer == "Ada"
    body = server.requests[0]
    assert "response_format" not in body
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["final_result"]
    assert result.messages[-1].role == "tool"  # the output call is answered in the history


async def test_tool_mode_re_asks_when_the_model_answers_in_text() -> None:
    script = [reply("here you go: Ada, tea"), tool_call(("final_result", ORDER))]
    with FakeServer(script) as server:
        result = await Agent(server.model(DEFAULT_PROFILE), output_type=Order).run("order?")
    assert result.output.customer == "Ada"
    assert server.requests[0]["tool_choice"] == "auto"  # the default profile cannot force tools
    assert "final_result" in server.requests[1]["messages"][-1]["content"]


async def test_refusal_raises_refusal_error() -> None:
    with FakeServer([Reply(refusal="I can't help with that.")]) as server:
        with pytest.raises(RefusalError) as caught:
            await Agent(server.model(), output_type=Order).run("order?")
    assert caught.value.refusal == "I can't help with that."
    assert caught.value.messages[-1].role == "assistant"


async def test_length_on_structured_output_is_truncation_not_json_error() -> None:
    with FakeServer([reply('{"customer": "Ad', finish_reason="length")]) as server:
        with pytest.raises(OutputTruncatedError, match="token limit"):
            await Agent(server.model(), output_type=Order).run("order?")


async def test_output_validators_may_re_ask_and_see_the_context() -> None:
    seen: list[Any] = []

    def no_empty_orders(ctx: RunContext[str], order: Order) -> Order:
        seen.append(ctx.deps)
        if not order.items:
            raise ToolRetry("an order needs at least one item")
        return order

    script = [reply({"customer": "Ada", "items": []}), reply(ORDER)]
    with FakeServer(script) as server:
        agent = Agent(server.model(), output_type=Order, output_validators=[no_empty_orders])
        result = await agent.run("order?", deps="shop")
    assert result.output.items
    assert seen == ["shop", "shop"]
    assert "at least one item" in server.requests[1]["messages"][-1]["content"]


@tool
def final_result(note: str) -> str:
    """A user's tool that happens to carry the output tool's name."""
    RAN.append(f"final_result({note})")
    return f"noted: {note}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


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
