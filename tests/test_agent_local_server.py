"""Whole agent runs over real sockets: a chat-completions server on 127.0.0.1.

The public contract: model strings ``"openai:NAME"`` with OPENAI_BASE_URL / OPENAI_API_KEY,
``OpenAICompatible(model, base_url=..., api_key=...)``, run errors carrying messages and usage.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel
from support.local_server import LocalServer, Recorded, Reply, sse

import agentloop
from agentloop import Agent, APIStatusError, OpenAICompatible, tool

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


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
