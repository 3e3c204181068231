"""The limit guard: request, turn, token and cost budgets, the repetition guard, unknown usage."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from support.scripted import add, script
from support.unreported import silent

from agentloop import (
    Agent,
    AssistantMessage,
    Limits,
    ModelRequest,
    ModelSettings,
    ToolCall,
    ToolMessage,
    UsageError,
    UsageLimitExceeded,
    UserMessage,
    count_request_tokens,
    tool,
)
from agentloop.testing import FakeServer, call, calls, reply, tool_call
from agentloop.testing import Reply as Scripted

pytestmark = pytest.mark.anyio


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


@pytest.mark.anyio
async def test_cost_budget_checks_the_counted_prompt_before_sending() -> None:
    prompt = "Summarize the plot of a long novel in three sentences, please."
    tokens = count_request_tokens(ModelRequest((UserMessage(prompt),)), "gpt-4").tokens
    limit = tokens * 30.0 / 1e6 * 0.99  # gpt-4 input is $30 per million: just short of it
    with FakeServer([], model_name="gpt-4") as server:
        agent = Agent(server.model(), limits=Limits(max_cost=limit))
        with pytest.raises(UsageLimitExceeded) as caught:
            await agent.run(prompt)
    assert server.requests == []
    assert caught.value.observed == pytest.approx(round(tokens * 30.0 / 1e6, 6))


@pytest.mark.anyio
async def test_token_caps_count_estimates_when_nothing_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_answer = "word " * 400  # about 500 tokens at four characters a token
    with FakeServer([silent(long_answer)], model_name="my-local") as server:
        agent = Agent(server.model(), limits=Limits(max_output_tokens=100))
        with (
            caplog.at_level(logging.WARNING, "agentloop"),
            pytest.raises(UsageLimitExceeded) as info,
        ):
            await agent.run("talk")
    assert info.value.limit == "max_output_tokens" and info.value.observed > 100
    assert "estimated where the server reported none" in str(info.value)
    assert sum("usage_unreported" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.anyio
async def test_the_unreported_warning_is_logged_once_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    script = [tool_call(("ping", {})), tool_call(("ping", {})), reply("done")]
    script = [Scripted(s.content, s.tool_calls, report_usage=False) for s in script]
    with FakeServer(script, model_name="my-local") as server:
        agent = Agent(server.model(), tools=[ping], limits=Limits(max_total_tokens=100_000))
        with caplog.at_level(logging.WARNING, "agentloop"):
            result = await agent.run("go")
    assert result.usage.unreported_requests == 3
    assert sum("usage_unreported" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.anyio
async def test_without_token_caps_nothing_is_estimated_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeServer([silent("hi")], model_name="my-local") as server:
        with caplog.at_level(logging.WARNING, "agentloop"):
            await Agent(server.model(), limits=Limits()).run("hello")
    assert not any("usage_unreported" in r.getMessage() for r in caplog.records)
