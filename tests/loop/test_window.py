"""The fit step: what is sent fits the window (tool prompt counted), the transcript keeps all."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from support.conversations import fetch

from agentloop import (
    LLAMA_CPP_PROFILE,
    Agent,
    ContextWindowError,
    ModelInfo,
    ModelProfile,
    ModelSettings,
    ToolMessage,
    UserMessage,
    register_model,
    tool,
)
from agentloop._loop.window import Window
from agentloop._messages import ModelRequest
from agentloop._wire.request_tokens import counter_for
from agentloop._wire.tokens import count_body_tokens
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


def _script(turns: int) -> list[Any]:
    return [*(tool_call(("fetch", {"page": i})) for i in range(turns)), reply("done")]


@pytest.mark.anyio
async def test_sent_requests_fit_a_4k_window_and_the_transcript_keeps_everything() -> None:
    with FakeServer(_script(12), model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), tools=[fetch], instructions="Read the pages.")
        result = await agent.run("Read pages 0 to 11.")
    limit = 4096 - 1024  # a quarter of the window is reserved for the answer
    counts = [count_body_tokens(body).tokens for body in server.requests]
    assert max(counts) <= limit
    assert len(server.requests[-1]["messages"]) < len(result.messages) - 1
    assert sum(isinstance(m, ToolMessage) for m in result.messages) == 12
    for body in server.requests:
        sent = body["messages"]
        assert sent[0] == {"role": "system", "content": "Read the pages."}
        assert sent[1] == {"role": "user", "content": "Read pages 0 to 11."}
        calls = {c["id"] for m in sent for c in m.get("tool_calls") or ()}
        assert calls == {m["tool_call_id"] for m in sent if m["role"] == "tool"}


@pytest.mark.anyio
async def test_streamed_runs_are_fitted_too() -> None:
    with FakeServer(_script(10), model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), tools=[fetch])
        async with agent.run_stream("Read pages 0 to 9.") as stream:
            async for _ in stream:
                pass
    assert max(count_body_tokens(body).tokens for body in server.requests) <= 4096 - 1024
    assert stream.result is not None and len(stream.result.messages) == 22


@pytest.mark.anyio
async def test_no_policy_raises_before_sending() -> None:
    with FakeServer([], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), history_policy=None)
        with pytest.raises(ContextWindowError) as caught:
            await agent.run("word " * 5000)
    assert server.requests == []
    err = caught.value
    assert err.prompt_tokens is not None and err.limit == 4096 - 1024 and err.context == 4096
    assert err.prompt_tokens > err.limit
    assert "gpt-3.5-turbo-0613" in str(err) and "no history policy" in str(err)
    assert err.usage is not None and err.usage.requests == 0
    assert len(err.messages) == 1  # the transcript is kept


@pytest.mark.anyio
async def test_a_prompt_too_large_for_any_policy_raises_before_sending() -> None:
    with FakeServer([], model_name="openai/gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), instructions="Be brief.")
        with pytest.raises(ContextWindowError, match="after the history policy"):
            await agent.run("word " * 5000)
    assert server.requests == []


@pytest.mark.anyio
async def test_reserved_output_comes_from_the_settings() -> None:
    prompt = "word " * 2500  # about 2500 tokens: fits 4096 - 1024, not 4096 - 2000
    with FakeServer([reply("ok")], model_name="gpt-3.5-turbo-0613") as server:
        await Agent(server.model(), history_policy=None).run(prompt)
    assert len(server.requests) == 1
    with FakeServer([], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(
            server.model(),
            history_policy=None,
            settings=ModelSettings(max_completion_tokens=2000),
        )
        with pytest.raises(ContextWindowError) as caught:
            await agent.run(prompt)
    assert caught.value.limit == 4096 - 2000


@pytest.mark.anyio
async def test_models_unknown_to_the_catalog_are_sent_as_they_are() -> None:
    with FakeServer([reply("ok")], model_name="my-local-model") as server:
        await Agent(server.model(), history_policy=None).run("word " * 5000)
    assert len(server.requests) == 1


@pytest.fixture
def own_catalog(monkeypatch: pytest.MonkeyPatch) -> Any:
    from agentloop import _prices

    monkeypatch.setattr(_prices, "_overrides", {})
    _prices.lookup_model.cache_clear()
    yield
    _prices.lookup_model.cache_clear()


@pytest.mark.anyio
async def test_registered_models_are_fitted_with_the_estimate(own_catalog: None) -> None:
    from agentloop import ModelInfo, lookup_model, register_model

    register_model(ModelInfo("my-org/tiny-4k", context=1200, max_output=200))
    assert lookup_model("my-org/tiny-4k") == ModelInfo("my-org/tiny-4k", 1200, 200)
    with FakeServer(_script(6), model_name="my-org/tiny-4k") as server:
        result = await Agent(server.model(), tools=[fetch]).run("Read pages 0 to 5.")
    counts = [count_body_tokens(body).tokens for body in server.requests]
    assert not count_body_tokens(server.requests[0]).exact
    assert max(counts) <= 1200 - 200
    assert len(server.requests[-1]["messages"]) < len(result.messages) - 1


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return city


def fitted(profile: ModelProfile, context: int) -> tuple[ModelRequest, Window]:
    """Fit a one-message request with one tool into `context` tokens, without a policy."""
    name = f"tiny-{context}-{profile.tool_prompt_tokens}"
    register_model(ModelInfo(name, context=context, max_output=10))
    model = FakeServer([], model_name=name).model(profile)
    request = ModelRequest(
        (UserMessage("What is the weather in Oslo?"),),
        (get_weather.definition(None),),
        ModelSettings(max_completion_tokens=10),
    )
    return request, Window(model, None, counter_for(model))


async def test_the_tool_prompt_of_the_server_is_counted() -> None:
    plain = dataclasses.replace(LLAMA_CPP_PROFILE, tool_prompt_tokens=0, tokens_per_tool=0)
    request, window = fitted(plain, 150)
    assert await window.fit(request) is request  # the JSON of one tool fits in 150 tokens
    request, window = fitted(LLAMA_CPP_PROFILE, 150)
    with pytest.raises(ContextWindowError):  # with the 170 tokens its template adds, it cannot
        await window.fit(request)
