"""Retries over HTTP: which failures are retried, how long the client waits, when it gives up."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from structlog.testing import capture_logs

from agentloop._errors import (
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    RateLimitError,
)
from agentloop._messages import ModelRequest, UserMessage
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.retry import RetryPolicy

OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


REQUEST = ModelRequest((UserMessage("hi"),))


class Script:
    """A MockTransport handler answering with the scripted items in order."""

    def __init__(self, *items):
        self.items = list(items)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _model(script: Script, sleeps: Sleeps, **policy):
    client = httpx.AsyncClient(transport=httpx.MockTransport(script))
    retry = RetryPolicy(sleep=sleeps, random=lambda: 0.0, **policy)
    model = OpenAICompatible(
        "m",
        base_url="http://fake.local/v1",
        api_key="sk-test-SECRET",
        http_client=client,
        retry=retry,
    )
    return model


def _json(status, body, headers=None):
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.anyio
async def test_503_503_200_succeeds_with_two_retries():
    script = Script(_json(503, {"error": {"message": "busy"}}), _json(503, {}), _json(200, OK))
    sleeps = Sleeps()
    with capture_logs() as logs:
        response = await _model(script, sleeps).request(REQUEST)
    assert response.message.content == "hello"
    assert response.retries == 2
    assert sleeps.calls == [0.5, 1.0]
    assert len(script.requests) == 3
    retries = [e for e in logs if e["event"] == "request_retry"]
    assert [(e["attempt"], e["status"], e["error"], e["delay"]) for e in retries] == [
        (1, 503, "InternalServerError", 0.5),
        (2, 503, "InternalServerError", 1.0),
    ]
    assert "SECRET" not in repr(logs)
    done = [e for e in logs if e["event"] == "request"]
    assert done[0]["retries"] == 2
    assert done[0]["input_tokens"] == 3


@pytest.mark.anyio
async def test_retries_exhausted_raises_the_last_error():
    script = Script(*[_json(500, {"error": {"message": f"boom {i}"}}) for i in range(3)])
    sleeps = Sleeps()
    with pytest.raises(InternalServerError, match="boom 2"):
        await _model(script, sleeps).request(REQUEST)
    assert len(script.requests) == 3
    assert len(sleeps.calls) == 2


@pytest.mark.anyio
async def test_quota_429_is_not_retried():
    script = Script(_json(429, {"error": {"message": "quota", "code": "insufficient_quota"}}))
    sleeps = Sleeps()
    with pytest.raises(InsufficientCreditsError):
        await _model(script, sleeps).request(REQUEST)
    assert sleeps.calls == []
    assert len(script.requests) == 1


@pytest.mark.anyio
async def test_400_is_not_retried():
    script = Script(_json(400, {"error": {"message": "bad param", "param": "x"}}))
    sleeps = Sleeps()
    with pytest.raises(BadRequestError, match="bad param"):
        await _model(script, sleeps).request(REQUEST)
    assert sleeps.calls == []


@pytest.mark.anyio
async def test_connection_error_is_retried_and_mapped():
    script = Script(httpx.ConnectError("refused"), _json(200, OK))
    sleeps = Sleeps()
    response = await _model(script, sleeps).request(REQUEST)
    assert response.retries == 1
    script = Script(*[httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(APITimeoutError) as info:
        await _model(script, Sleeps()).request(REQUEST)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


@pytest.mark.anyio
async def test_rate_limit_waits_what_the_server_asks():
    script = Script(_json(429, {}, {"retry-after-ms": "1200"}), _json(409, {}), _json(200, OK))
    sleeps = Sleeps()
    response = await _model(script, sleeps).request(REQUEST)
    assert sleeps.calls == [1.2, 1.0]
    assert response.retries == 2


@pytest.mark.anyio
async def test_rate_limit_beyond_the_cap_fails_fast():
    script = Script(_json(429, {"error": {"message": "slow down"}}, {"retry-after": "600"}))
    sleeps = Sleeps()
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await _model(script, sleeps, max_retry_after=60).request(REQUEST)
    assert time.monotonic() - started < 5
    assert sleeps.calls == []
    assert info.value.retry_after == 600
    assert "600 s" in str(info.value)


@pytest.mark.anyio
async def test_should_retry_false_stops_a_503():
    script = Script(_json(503, {}, {"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        await _model(script, Sleeps()).request(REQUEST)
    assert len(script.requests) == 1


@pytest.mark.anyio
async def test_conflict_retried_then_final():
    script = Script(*[_json(409, {"error": {"message": "conflict"}})] * 3)
    with pytest.raises(ConflictError):
        await _model(script, Sleeps(), max_retries=2).request(REQUEST)
    assert len(script.requests) == 3


@pytest.mark.anyio
async def test_error_inside_a_200_body_follows_the_same_rules():
    upstream = {"error": {"code": 502, "message": "upstream down"}}
    script = Script(_json(200, upstream), _json(200, OK))
    response = await _model(script, Sleeps()).request(REQUEST)
    assert response.retries == 1
    assert json.loads(script.requests[1].content)["messages"][0]["content"] == "hi"
