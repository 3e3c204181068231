"""The model's request token counter: one per run, with the model's own profile."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from support.scripted import flaky

from agentloop import (
    LLAMA_CPP_PROFILE,
    OPENAI_PROFILE,
    Agent,
    ContextWindowError,
    Limits,
    ModelRequest,
    UserMessage,
    tool,
)
from agentloop._wire import request_tokens
from agentloop._wire.request_tokens import RequestCounter, counter_for
from agentloop.testing import FunctionModel, call, calls

pytestmark = pytest.mark.anyio


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
