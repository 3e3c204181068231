"""Real recorded streams (tests/fixtures/recordings with ``sse_events``): streamed and whole answers
give the same results.

Each recorded stream is served byte for byte (its ``raw_sse``) behind `httpx.MockTransport`; its
whole-answer twin is a chat-completion JSON body assembled from the recorded chunks with plain
Python (the recordings hold no non-stream twin of the same exchange). Then:

- the model's streamed `ModelResponse` equals the parse of that JSON body (content, tool calls,
  refusal, reasoning text, finish reason, usage, cost, model), and equals what the stream
  accumulator gives when fed the bytes directly;
- for text answers, `Agent.run` (JSON) and `Agent.run_stream` (SSE) give the same output,
  transcript, usage and cost;
- a stream that carries an error chunk ends the streamed run with the typed error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from agentloop import Agent
from agentloop._errors import APIStatusError
from agentloop._events import TextDelta
from agentloop._messages import ModelRequest, ModelResponse, UserMessage
from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import OPENAI_PROFILE
from agentloop._wire.sse import SSEDecoder

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures" / "recordings"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


STREAMS = [p for p in sorted(FIXTURES.glob("*.json")) if "sse_events" in load(p)["response"]]


def chunks_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(e) for e in record["response"]["sse_events"] if e.strip() != "[DONE]"]


def stream_error(record: dict[str, Any]) -> dict[str, Any] | None:
    return next((c["error"] for c in chunks_of(record) if c.get("error")), None)


def text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    return value or ""


def whole_body(record: dict[str, Any]) -> dict[str, Any]:
    """The chat completion the stream adds up to, assembled by hand (choice 0 only)."""
    content: list[str] = []
    refusal: list[str] = []
    reasoning: dict[str, list[str]] = {}
    calls: dict[int, dict[str, Any]] = {}
    finish, usage, model, id_ = None, None, None, None
    for chunk in chunks_of(record):
        model = model or chunk.get("model")
        id_ = id_ or chunk.get("id")
        if chunk.get("usage"):
            usage = chunk["usage"]
        elif (chunk.get("x_groq") or {}).get("usage") and usage is None:
            usage = chunk["x_groq"]["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {}
            content.append(text(delta.get("content")))
            refusal.append(delta.get("refusal") or "")
            for key in ("reasoning", "reasoning_content"):
                if isinstance(delta.get(key), str):
                    reasoning.setdefault(key, []).append(delta[key])
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call.get("index", len(calls)), {"id": None, "args": ""})
                function = call.get("function") or {}
                entry["id"] = entry["id"] or call.get("id")
                entry["name"] = entry.get("name") or function.get("name")
                entry["args"] += function.get("arguments") or ""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(content) or None,
        "refusal": "".join(refusal) or None,
        **{key: "".join(parts) for key, parts in reasoning.items()},
    }
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["args"]},
            }
            for c in calls.values()
        ]
    body: dict[str, Any] = {
        "id": id_,
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def sse_bytes(record: dict[str, Any]) -> bytes:
    response = record["response"]
    if response.get("raw_sse"):
        return response["raw_sse"].encode()
    return "".join(f"data: {e}\n\n" for e in response["sse_events"]).encode()


def replay_model(record: dict[str, Any], requests: list[dict[str, Any]]) -> OpenAICompatible:
    """Answers stream requests with the recorded bytes, others with the whole-answer JSON."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        if body.get("stream"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=sse_bytes(record)
            )
        return httpx.Response(200, json=whole_body(record))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return OpenAICompatible(
        "recorded",
        base_url="http://replay.test/v1",
        api_key="sk-replay",
        http_client=client,
        profile=OPENAI_PROFILE,
        max_retries=0,
    )


def accumulate(data: bytes) -> ModelResponse:
    decoder, accumulator = SSEDecoder(), StreamAccumulator()
    for event in [*decoder.feed(data), *decoder.close()]:
        accumulator.feed_event(event)
    return accumulator.response()


def essentials(response: ModelResponse, *, ids: bool) -> dict[str, Any]:
    message = response.message
    return {
        "content": message.content,
        "refusal": message.refusal,
        "calls": [(c.name, c.arguments, c.id if ids else None) for c in message.tool_calls],
        "reasoning": {k: message.reasoning.get(k) for k in ("reasoning", "reasoning_content")},
        "finish": (response.finish_reason, response.raw_finish_reason),
        "usage": response.usage,
        "model": response.model,
    }


async def drain(stream: Any) -> None:
    async with stream:
        async for _ in stream:
            pass


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem[:80])
async def test_recorded_stream_matches_its_whole_answer(path: Path) -> None:
    record = load(path)
    error = stream_error(record)
    requests: list[dict[str, Any]] = []
    model = replay_model(record, requests)
    request = ModelRequest((UserMessage("hi"),))
    with anyio.fail_after(10):
        if error is not None:
            with pytest.raises(APIStatusError) as caught:
                await drain(Agent(model).run_stream("hi"))
            assert str(error["message"]) in caught.value.message
            assert [m.role for m in caught.value.messages] == ["user"]
            return
        async with model.stream(request) as deltas:
            pieces = [d async for d in deltas]
        streamed = deltas.response
        whole = await model.request(request)
    assert [r.get("stream") for r in requests] == [True, None]
    # the streamed answer is what the accumulator makes of the bytes, timing aside
    direct = accumulate(sse_bytes(record))
    assert streamed.message == direct.message
    assert essentials(streamed, ids=True) == essentials(direct, ids=True)
    # ... and what the same exchange gives as one JSON body
    recorded_ids = all(
        c.get("id") for c in whole_body(record)["choices"][0]["message"].get("tool_calls", [])
    )
    assert essentials(streamed, ids=recorded_ids) == essentials(whole, ids=recorded_ids)
    if not streamed.message.reasoning:
        streamed_text = "".join(d.text for d in pieces if isinstance(d, TextDelta))
        assert streamed_text.strip() == (streamed.message.content or "").strip()
    for response in (streamed, whole):
        assert response.latency is not None and response.latency > 0
        if response is streamed and not pieces:  # nothing generated: no first token
            assert response.time_to_first_token is None
            continue
        assert response.time_to_first_token is not None
        assert 0 <= response.time_to_first_token <= response.latency


TEXT_STREAMS = [
    p
    for p in STREAMS
    if stream_error(load(p)) is None
    and not whole_body(load(p))["choices"][0]["message"].get("tool_calls")
    and not whole_body(load(p))["choices"][0]["message"].get("refusal")
    and whole_body(load(p))["choices"][0]["finish_reason"] not in ("length", None)
]


@pytest.mark.parametrize("path", TEXT_STREAMS, ids=lambda p: p.stem[:80])
async def test_recorded_text_runs_are_equal_streamed_and_not(path: Path) -> None:
    record = load(path)
    requests: list[dict[str, Any]] = []
    agent = Agent(replay_model(record, requests))
    with anyio.fail_after(10):
        plain = await agent.run("hi")
        async with agent.run_stream("hi") as stream:
            events = [event async for event in stream]
    streamed = stream.result
    assert streamed.output == plain.output
    assert streamed.usage == plain.usage
    assert streamed.cost == plain.cost
    assert [m.role for m in streamed.messages] == [m.role for m in plain.messages]
    assert streamed.messages[-1].content == plain.messages[-1].content  # type: ignore[union-attr]
    assert type(events[-1]).__name__ == "RunFinished"


def test_the_recordings_cover_enough_streams() -> None:
    assert len(STREAMS) >= 20
    assert len(TEXT_STREAMS) >= 8
    assert (
        sum(bool(whole_body(load(p))["choices"][0]["message"].get("tool_calls")) for p in STREAMS)
        >= 5
    )
