"""One-way data through a run: stages return values, the loop's `RunState` alone records them.

Also the model's token counter: one per run, shared by the fit step and the limit guard, so a
turn counts its request once, with the model's own profile.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import pytest

from agentloop import (
    LLAMA_CPP_PROFILE,
    OPENAI_PROFILE,
    Agent,
    ContextWindowError,
    Limits,
    ModelRequest,
    RequestUsage,
    RunContext,
    ToolExecutionError,
    ToolRetry,
    Usage,
    UserMessage,
    tool,
)
from agentloop._loop.dispatch import DispatchConfig, ToolTurn
from agentloop._loop.guard import LimitGuard
from agentloop._loop.state import RunState
from agentloop._messages import AssistantMessage, ModelResponse, ToolCall
from agentloop._wire import request_tokens
from agentloop._wire.request_tokens import RequestCounter, counter_for
from agentloop.testing import FunctionModel, call, calls

pytestmark = pytest.mark.anyio


@tool(max_retries=2)
def flaky(n: int) -> int:
    """Always asks to be called again."""
    raise ToolRetry(f"try again ({n})")


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


def _response(usage: RequestUsage) -> ModelResponse:
    message = AssistantMessage(content="hi")
    return ModelResponse(message, usage, "stop", "stop", "gpt-4o-mini", "id")


def test_the_state_accounts_and_the_guard_only_decides() -> None:
    state = RunState(None, "gpt-4o-mini")
    model = FunctionModel(lambda m, i: "x", name="gpt-4o-mini")
    guard = LimitGuard(Limits(max_cost=1.0), "gpt-4o-mini", counter_for(model))
    response = _response(RequestUsage(1_000, 100))
    guard.after_request(state, response)
    assert state.usage.requests == 0 and state.cost == 0.0 and state.messages == []
    state.add_response(response)
    assert state.usage.requests == 1 and state.usage.input_tokens == 1_000
    assert state.cost is not None and state.cost > 0
    assert state.messages == [response.message]


async def test_a_turn_counts_its_request_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    original = request_tokens.build_body

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(request_tokens, "build_body", counting)

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    replies = [calls(call("add", {"a": 1, "b": 2})), calls(call("add", {"a": 3, "b": 4})), "7"]
    model = FunctionModel(lambda m, i: replies.pop(0), name="gpt-4o-mini")  # a known window
    agent = Agent(model, tools=[add], limits=Limits(max_cost=5.0))
    result = await agent.run("add things")
    assert result.usage.requests == 3
    # The window and the cost check of three requests share one count of the tools' overhead.
    assert len(built) == 1


def test_the_counter_counts_with_the_models_own_profile() -> None:
    request = ModelRequest((UserMessage("Weather in Oslo?"),), (flaky.definition(None),))
    plain = FunctionModel(lambda m, i: "x", name="local", profile=OPENAI_PROFILE)
    local = FunctionModel(lambda m, i: "x", name="local", profile=LLAMA_CPP_PROFILE)
    extra = LLAMA_CPP_PROFILE.tool_prompt_tokens + LLAMA_CPP_PROFILE.tokens_per_tool
    assert extra > 0
    plain_count = counter_for(plain).count(request).tokens
    local_count = counter_for(local).count(request).tokens
    assert local_count - plain_count >= extra


class _CountingModel(FunctionModel):
    """A model that supplies its own token counter (a server tokenizer, say)."""

    def token_counter(self) -> RequestCounter:
        return _HugeCounter(self)


class _HugeCounter(RequestCounter):
    def _message(self, message: Any) -> int:
        return 1_000_000


async def test_a_model_may_supply_its_own_counter() -> None:
    model = _CountingModel(lambda m, i: "never sent", name="gpt-4o-mini")
    agent = Agent(model, history_policy=None)
    with pytest.raises(ContextWindowError):
        await agent.run("hello")
    assert model.calls == 0


def test_profiles_are_distinct_objects_for_the_counter_cache() -> None:
    learned = dataclasses.replace(OPENAI_PROFILE, tool_prompt_tokens=50)
    request = ModelRequest((UserMessage("x"),), (flaky.definition(None),))
    model = FunctionModel(lambda m, i: "x", name="local", profile=OPENAI_PROFILE)
    counter = counter_for(model)
    before = counter.count(request).tokens
    model.profile = learned  # a model that learned its server mid-run
    assert counter.count(request).tokens == before + 50
