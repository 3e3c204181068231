"""The transport against a real HTTP server on 127.0.0.1: success, timeouts, drops, every error."""

from __future__ import annotations

import time

import pytest
from support.local_server import LocalServer, Reply
from support.local_transport import KEY, OK, REQUEST, Sleeps, model_for, with_timeout

from agentloop._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    InsufficientCreditsError,
    InternalServerError,
    ModerationError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
)
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import DEFAULT_PROFILE


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
