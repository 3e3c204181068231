"""Streams from a real HTTP server on 127.0.0.1: deltas, deadlines, breaks, closing."""

from __future__ import annotations

import time

import anyio
import pytest
from support.local_server import Reply, sse
from support.local_transport import OK, REQUEST, model_for, with_timeout

from agentloop._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    NotFoundError,
    ProtocolError,
    UsageError,
)


def chunk(delta=None, finish=None, usage=None, choices=True):
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    )
    if usage is not None:
        body["usage"] = usage
    return body


STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk(
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "clock", "arguments": ""}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
    chunk(finish="tool_calls"),
    chunk(choices=False, usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
)  # fmt: skip


async def collect(model, request=REQUEST):
    async with model.stream(request) as stream:
        deltas = [delta async for delta in stream]
    return deltas, stream.response


@pytest.mark.anyio
async def test_stream_success(server):
    server.script(Reply.stream(STREAM, chunk_delay=0.01))
    model = model_for(server)
    deltas, response = await collect(model)
    assert "".join(d.text for d in deltas if type(d).__name__ == "TextDelta") == "Hello"
    started = [d for d in deltas if type(d).__name__ == "ToolCallStarted"]
    assert [(d.id, d.name) for d in started] == [("call_1", "clock")]
    assert response.message.content == "Hello"
    assert response.message.tool_calls[0].name == "clock"
    assert response.usage.input_tokens == 7
    assert 0 <= response.time_to_first_token <= response.latency
    sent = server.requests[0]
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.json()["stream"] is True
    assert sent.json()["stream_options"] == {"include_usage": True}
    await model.aclose()


@pytest.mark.anyio
async def test_stream_response_before_the_end_is_a_usage_error(server):
    server.script(Reply.stream(STREAM))
    model = model_for(server)
    async with model.stream(REQUEST) as stream:
        with pytest.raises(UsageError, match="not ended"):
            stream.response  # noqa: B018
        assert stream.usage is None
        async for _ in stream:
            pass
        assert stream.usage is not None
        assert stream.usage.output_tokens == 3


@pytest.mark.anyio
async def test_server_ignoring_stream_true_still_gives_deltas(server):
    server.script(Reply(200, json_body=OK))
    deltas, response = await collect(model_for(server))
    assert [d.text for d in deltas] == ["hello"]
    assert response.message.content == "hello"


@pytest.mark.anyio
async def test_keepalive_comments_forever_hit_the_overall_deadline(server):
    server.script(
        Reply.stream(
            [b": OPENROUTER PROCESSING\n\n"], forever=b": keep-alive\n\n", chunk_delay=0.05
        )
    )
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="deadline"):
        await collect(model_for(server), with_timeout(0.5))
    assert time.monotonic() - started < 3
    assert len(server.requests) == 1  # headers had arrived: never retried
    assert server.wait_idle()


@pytest.mark.anyio
async def test_stream_broken_mid_body_is_final(server):
    server.script(Reply.stream(STREAM, abort_after=3, abort="reset"), Reply(200, json_body=OK))
    with pytest.raises(APIConnectionError):
        await collect(model_for(server))
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_stream_ending_without_finish_or_done_is_incomplete(server):
    server.script(Reply.stream(STREAM[:3]))
    with pytest.raises(IncompleteStreamError) as info:
        await collect(model_for(server))
    assert info.value.partial is not None


@pytest.mark.anyio
async def test_leaving_a_stream_early_closes_the_connection(server):
    server.script(Reply.stream(STREAM[:2], forever=b": ping\n\n", chunk_delay=0.05))
    model = model_for(server)
    async with model.stream(REQUEST) as stream:
        async for _ in stream:
            break
    assert server.wait_idle(3)


@pytest.mark.anyio
async def test_error_event_inside_a_200_stream(server):
    error = {"error": {"message": "upstream died", "code": 502}}
    server.script(Reply.stream(sse(chunk({"content": "a"}), error)))
    with pytest.raises(APIStatusError, match="upstream died"):
        await collect(model_for(server))
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_json_error_body_on_a_stream_request(server):
    body = {
        "error": {
            "message": "Invalid model",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }
    server.script(Reply(404, json_body=body))
    with pytest.raises(NotFoundError, match="Invalid model"):
        await collect(model_for(server))


@pytest.mark.anyio
async def test_unexpected_content_type_on_a_stream_is_a_protocol_error(server):
    server.script(Reply(200, headers={"Content-Type": "text/html"}, body="<html>portal</html>"))
    with pytest.raises(ProtocolError, match="portal"):
        await collect(model_for(server, retries=0))


@pytest.mark.anyio
async def test_cancelling_a_stream_closes_the_connection(server):
    server.script(Reply.stream(STREAM[:2], forever=b": ping\n\n", chunk_delay=0.05))
    model = model_for(server)
    seen = []
    started = time.monotonic()
    with anyio.move_on_after(0.4) as scope:
        async with model.stream(REQUEST) as stream:
            async for delta in stream:
                seen.append(delta)
    assert scope.cancelled_caught
    assert time.monotonic() - started < 2
    assert [d.text for d in seen] == ["Hel"]
    assert server.wait_idle(3)
