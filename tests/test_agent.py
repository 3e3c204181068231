"""`Agent`: immutable configuration, `replace`, `run_sync`, whole runs over real sockets.

The public contract: model strings ``"openai:NAME"`` with OPENAI_BASE_URL / OPENAI_API_KEY,
``OpenAICompatible(model, base_url=..., api_key=...)``, run errors carrying messages and usage.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel
from support.local_server import LocalServer, Recorded, Reply, sse
from support.scripted import add, script

import agentloop
from agentloop import (
    Agent,
    APIStatusError,
    Limits,
    ModelSettings,
    OpenAICompatible,
    UsageError,
    tool,
)
from agentloop._agent import _OPTIONS  # pyright: ignore[reportPrivateUsage]
from agentloop.testing import FunctionModel, call, calls

pytestmark = pytest.mark.anyio


class Sum(BaseModel):
    total: int
    explanation: str


def completion(message: dict[str, Any], usage: tuple[int, int] = (20, 5)) -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": 25},
    }
    return Reply(200, headers={"content-type": "application/json"}, json_body=body)


def call_add(a: int, b: int) -> dict[str, Any]:
    arguments = json.dumps({"a": a, "b": b})
    function = {"name": "add", "arguments": arguments}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": function}],
    }


def streamed(message_text: str) -> Reply:
    chunks = [
        {
            "id": "s",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        for piece in (message_text[:5], message_text[5:])
    ]
    chunks.append(
        {
            "id": "s",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    return Reply.stream(sse(*chunks), headers={"content-type": "text/event-stream"})


async def test_model_string_with_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
        server.script(completion(call_add(2, 3)), completion({"role": "assistant", "content": "5"}))
        agent = Agent("openai:gpt-4o-mini", tools=[add])
        result = await agent.run("2+3?")
        await agent.model.aclose()
    assert result.output == "5"
    assert result.usage.requests == 2
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 10)
    first: Recorded = server.requests[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test-local"
    assert first.json()["tools"][0]["function"]["name"] == "add"
    second = server.requests[1].json()["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": "c1", "content": "5"}
    assert result.cost == pytest.approx((40 * 0.15 + 10 * 0.6) / 1e6)


async def test_openai_compatible_structured_output_and_stream() -> None:
    with LocalServer() as server:
        model = OpenAICompatible("local-model", base_url=server.base_url, api_key="sk-local-1")
        answer = {"total": 5, "explanation": "2+3"}
        message = {"role": "assistant", "content": json.dumps(answer)}
        server.script(completion(message), streamed("hello world"))
        result = await Agent(model, output_type=Sum).run("2+3?")
        async with Agent(model).run_stream("hi") as stream:
            events = [event async for event in stream]
        await model.aclose()
    assert result.output == Sum(total=5, explanation="2+3")
    # an unknown server, no profile: optimistic, so the schema goes in a json_schema format
    body = server.requests[0].json()
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["total", "explanation"]
    assert "tools" not in body and "tool_choice" not in body
    texts = [e.text for e in events if isinstance(e, agentloop.TextDelta)]
    assert texts == ["hello", " world"]
    assert stream.result.output == "hello world"
    assert server.requests[1].json()["stream"] is True


async def test_run_error_carries_transcript_and_usage() -> None:
    with LocalServer() as server:
        key = "sk-sentinel-0123456789"
        model = OpenAICompatible("m", base_url=server.base_url, api_key=key, max_retries=0)
        unauthorized = Reply(
            401, json_body={"error": {"message": "bad key", "code": "invalid_api_key"}}
        )
        server.script(completion(call_add(1, 1)), unauthorized)
        with pytest.raises(APIStatusError) as caught:
            await Agent(model, tools=[add]).run("1+1")
        await model.aclose()
    err = caught.value
    assert isinstance(err, agentloop.AuthenticationError)
    assert err.status_code == 401
    assert [m.role for m in err.messages] == ["user", "assistant", "tool"]
    assert err.usage is not None
    assert err.usage.requests == 1
    assert err.usage.tool_calls == 1
    assert key not in str(err)
    assert key not in repr(err)
    assert key not in repr(model)


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


@tool
def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _approve(*_: Any) -> bool:
    return True


def _policy(messages: list[Any], budget: Any) -> list[Any]:
    return messages


def _every_option_changed() -> dict[str, Any]:
    """A value other than the default for every constructor option but the model."""
    return {
        "instructions": "Be brief.",
        "name": "helper",
        "tools": [add],
        "output_type": int,
        "settings": ModelSettings(temperature=0.5),
        "max_turns": 4,
        "limits": Limits(max_requests=9),
        "output_mode": "tool",
        "output_retries": 5,
        "output_validators": [lambda value: value],
        "strict": False,
        "tool_concurrency": 3,
        "tool_errors": "raise",
        "max_tool_result_chars": 99,
        "approver": _approve,
        "history_policy": _policy,
        "toolsets": [_NoTools()],
        "handoffs": [Agent(FunctionModel(lambda m, i: "y"), name="target")],
    }


class _NoTools:
    """The smallest `Toolset`: it offers nothing."""

    name = "none"

    def connect(self) -> Any:
        raise AssertionError("not connected by replace()")


def test_replace_with_no_changes_keeps_every_option() -> None:
    options = _every_option_changed()
    assert set(options) | {"model"} == set(_OPTIONS), "a constructor option is not covered here"
    agent = Agent(FunctionModel(lambda m, i: "x"), **options)
    copy = agent.replace()
    assert copy is not agent
    assert copy.model is agent.model
    for name in _OPTIONS:
        if name in ("model", "max_turns", "tools", "output_validators"):
            continue
        assert getattr(copy, name) == getattr(agent, name), name
    assert copy.tools == agent.tools
    assert copy.output_validators == agent.output_validators
    assert copy.limits == Limits(max_requests=9, max_turns=4)


def test_replace_changes_only_what_it_is_given_and_leaves_the_original() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"), instructions="a", tool_concurrency=2)
    other = agent.replace(instructions="b", max_turns=3)
    assert (agent.instructions, other.instructions) == ("a", "b")
    assert other.tool_concurrency == 2
    assert agent.limits.max_turns is None and other.limits.max_turns == 3
    replaced_model = agent.replace(model="openai:gpt-4o-mini")
    assert replaced_model.model.name == "gpt-4o-mini"


def test_replace_rejects_unknown_options_before_anything_runs() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(UsageError, match="tool_concurency"):
        agent.replace(tool_concurency=3)


def test_agents_stay_immutable() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(AttributeError, match="replace"):
        agent.instructions = "no"  # type: ignore[misc]


async def test_a_replaced_agent_runs_with_its_own_tools() -> None:
    def answer(messages: list[Any], info: Any) -> Any:
        if messages[-1].role == "tool":
            return messages[-1].content
        assert info.tool_names == ["mul"], "the replaced agent must offer its own tools only"
        return calls(call("mul", {"a": 6, "b": 7}))

    agent = Agent(FunctionModel(answer), tools=[add])
    result = await agent.replace(tools=[mul]).run("6 times 7?")
    assert result.output == "42"
    assert [t.name for t in agent.tools] == ["add"]


async def test_replace_of_the_tool_names_rechecks_them() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(UsageError, match="two tools"):
        agent.replace(tools=[add, add])
