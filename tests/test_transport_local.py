"""The transport against a real HTTP server on 127.0.0.1: success, timeouts, drops, every error."""

from __future__ import annotations

import time

import anyio
import pytest
from support.local_server import LocalServer, Reply, sse

from agentloop._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    IncompleteStreamError,
    InsufficientCreditsError,
    InternalServerError,
    ModerationError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    UsageError,
)
from agentloop._messages import ModelRequest, ToolDefinition, UserMessage
from agentloop._settings import ModelSettings
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import DEFAULT_PROFILE
from agentloop._wire.retry import RetryPolicy

KEY = "sk-local-SECRET-123"
OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


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
REQUEST = ModelRequest(
    (UserMessage("hi"),), tools=(ToolDefinition("clock", "", {"type": "object"}),)
)


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def model_for(server, *, retries=2, timeout=10.0, sleeps=None, **kwargs):
    policy = RetryPolicy(max_retries=retries, sleep=sleeps or Sleeps())
    kwargs.setdefault("profile", DEFAULT_PROFILE)  # the transport, not the profile learning
    return OpenAICompatible(
        "m", base_url=server.base_url, api_key=KEY, timeout=timeout, retry=policy, **kwargs
    )


def with_timeout(seconds: float) -> ModelRequest:
    return ModelRequest(REQUEST.messages, REQUEST.tools, ModelSettings(timeout=seconds))


async def collect(model, request=REQUEST):
    async with model.stream(request) as stream:
        deltas = [delta async for delta in stream]
    return deltas, stream.response


@pytest.mark.anyio
async def test_non_stream_success(server):
    server.script(Reply(200, json_body=OK))
    model = model_for(server)
    response = await model.request(REQUEST)
    assert response.message.content == "hello"
    assert response.usage.input_tokens == 5
    assert response.retries == 0
    assert response.latency is not None
    assert response.time_to_first_token is not None
    assert response.latency >= response.time_to_first_token >= 0
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json()["messages"] == [{"role": "user", "content": "hi"}]
    await model.aclose()


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
async def test_slow_headers_time_out_then_retry_succeeds(server):
    server.script(Reply(200, json_body=OK, header_delay=2.0), Reply(200, json_body=OK))
    sleeps = Sleeps()
    started = time.monotonic()
    response = await model_for(server, sleeps=sleeps).request(with_timeout(0.3))
    assert time.monotonic() - started < 1.5
    assert response.retries == 1
    assert len(sleeps.calls) == 1


@pytest.mark.anyio
async def test_slow_headers_time_out_final(server):
    server.script(*[Reply(200, json_body=OK, header_delay=2.0)] * 2)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match=r"0\.3 s deadline"):
        await model_for(server, retries=1).request(with_timeout(0.3))
    assert time.monotonic() - started < 1.8
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_slow_body_counts_against_the_deadline(server):
    pieces = [b'{"id":"x",', b'"choices":[]}']
    server.script(Reply(200, chunks=pieces, chunk_delay=2.0))
    with pytest.raises(APITimeoutError):
        await model_for(server, retries=0).request(with_timeout(0.4))


@pytest.mark.anyio
async def test_model_timeout_is_the_default_deadline(server):
    server.script(Reply(200, json_body=OK, header_delay=2.0))
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await model_for(server, retries=0, timeout=0.3).request(REQUEST)
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
@pytest.mark.parametrize("reset", [False, True])
async def test_dropped_connection_is_retried(server, reset):
    server.script(Reply.drop(reset=reset), Reply(200, json_body=OK))
    response = await model_for(server).request(REQUEST)
    assert response.retries == 1
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_dropped_connection_every_time(server):
    server.script(*[Reply.drop()] * 3)
    with pytest.raises(APIConnectionError) as info:
        await model_for(server).request(REQUEST)
    assert not isinstance(info.value, APIStatusError)
    assert info.value.__cause__ is not None
    assert KEY not in str(info.value)
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_body_cut_short_is_a_connection_error_and_retried(server):
    server.script(
        Reply(200, chunks=[b'{"id": "x", '], content_length=500, abort_after=1),
        Reply(200, json_body=OK),
    )
    response = await model_for(server).request(REQUEST)
    assert response.retries == 1


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
async def test_non_json_200_body_is_a_protocol_error(server):
    server.script(Reply(200, body="not json at all"))
    with pytest.raises(ProtocolError, match="not JSON"):
        await model_for(server).request(REQUEST)
    assert len(server.requests) == 1


HTML = "<html><head><title>502</title></head><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.anyio
def _err(message, **fields):
    return {"error": {"message": message, **fields}}


FLAGGED = _err("Input flagged", code=403, metadata={"reasons": ["violence"], "flagged_input": "x"})
ERROR_KINDS = [
    (400, _err("bad", type="invalid_request_error"), {}, BadRequestError, 1),
    (400, _err("too long", code="context_length_exceeded"), {}, ContextLengthError, 1),
    (401, _err("Incorrect API key", code="invalid_api_key"), {}, AuthenticationError, 1),
    (402, _err("Insufficient credits", code=402), {}, InsufficientCreditsError, 1),
    (403, FLAGGED, {}, ModerationError, 1),
    (403, _err("not allowed"), {}, PermissionDeniedError, 1),
    (404, _err("no such model"), {}, NotFoundError, 1),
    (408, _err("timeout"), {}, APIStatusError, 3),
    (409, _err("conflict"), {}, ConflictError, 3),
    (429, _err("slow down"), {}, RateLimitError, 3),
    (429, _err("quota", code="insufficient_quota"), {}, InsufficientCreditsError, 1),
    (429, _err("later"), {"Retry-After": "3600"}, RateLimitError, 1),
    (500, _err("oops"), {}, InternalServerError, 3),
    (503, _err("no provider", code=503), {}, InternalServerError, 3),
    (503, _err("down"), {"x-should-retry": "false"}, InternalServerError, 1),
    (400, _err("retry me"), {"x-should-retry": "true"}, BadRequestError, 3),
    (502, HTML, {"Content-Type": "text/html"}, InternalServerError, 3),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "body", "headers", "cls", "attempts"), ERROR_KINDS)
async def test_error_kinds(server, status, body, headers, cls, attempts):
    if isinstance(body, str):
        reply = Reply(status, headers=headers, body=body)
    else:
        reply = Reply(status, headers=headers, json_body=body)
    server.script(*[reply] * 3)
    sleeps = Sleeps()
    with pytest.raises(cls) as info:
        await model_for(server, sleeps=sleeps).request(REQUEST)
    error = info.value
    assert error.status_code == status
    assert len(server.requests) == attempts
    assert len(sleeps.calls) == attempts - 1
    assert KEY not in str(error)
    assert KEY not in repr(error)
    if isinstance(body, str):
        assert "<" not in str(error)
        assert "502 Bad Gateway" in str(error)
    if "Retry-After" in headers:
        assert error.retry_after == 3600
        assert "3600 s" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_status_then_success(server, status):
    server.script(Reply(status, json_body={"error": {"message": "x"}}), Reply(200, json_body=OK))
    sleeps = Sleeps()
    response = await model_for(server, sleeps=sleeps).request(REQUEST)
    assert response.retries == 1
    assert len(sleeps.calls) == 1


@pytest.mark.anyio
async def test_retry_after_is_honoured_with_the_real_sleep(server):
    server.script(
        Reply(429, headers={"retry-after-ms": "200"}, json_body={}), Reply(200, json_body=OK)
    )
    model = OpenAICompatible("m", base_url=server.base_url, api_key=KEY, profile=DEFAULT_PROFILE)
    response = await model.request(REQUEST)
    assert response.retries == 1
    gap = server.requests[1].at - server.requests[0].at
    assert 0.19 <= gap < 1.5
    assert response.latency is not None
    assert response.latency >= 0.2
    await model.aclose()


@pytest.mark.anyio
async def test_redirect_is_not_followed_and_the_key_stays_home(server):
    with LocalServer() as elsewhere:
        elsewhere.script(Reply(200, json_body=OK))
        target = elsewhere.url("/v1/chat/completions")
        server.script(Reply(307, headers={"Location": target}, body=""))
        with pytest.raises(APIStatusError, match="not followed") as info:
            await model_for(server).request(REQUEST)
        assert info.value.status_code == 307
        assert elsewhere.requests == []
        assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_key_echoed_by_the_server_is_scrubbed(server):
    server.script(
        Reply(401, json_body={"error": {"message": f"Incorrect API key provided: {KEY}"}})
    )
    with pytest.raises(AuthenticationError) as info:
        await model_for(server).request(REQUEST)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.body)
    assert "Incorrect API key provided: ***" in str(info.value)


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
