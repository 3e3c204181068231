"""The retry policy: which failures are retried, how long the client waits, and when it gives up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from structlog.testing import capture_logs

from agentloop._errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
    UsageError,
)
from agentloop._messages import ModelRequest, UserMessage
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.retry import RetryPolicy, parse_retry_after
from agentloop._wire.status import status_error

NOW = 1_700_000_000.0


def _http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "-4"}, -4.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "86400"}, 86400.0),
        ({"retry-after": "garbage"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"retry-after": _http_date(30)}, 30.0),
        ({"retry-after": _http_date(-600)}, -600.0),
        ({"retry-after": "Wed, 99 Foo 2024 99:99:99 GMT"}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    got = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def _error(status: int, body=None, headers=None):
    return status_error(status, body or {"error": {"message": "x"}}, headers or {})


@pytest.mark.parametrize(
    ("status", "retried"),
    [(400, False), (401, False), (403, False), (404, False), (408, True), (409, True),
     (422, False), (429, True), (500, True), (502, True), (503, True), (504, True)],
)  # fmt: skip
def test_retryable_statuses(status, retried):
    policy = RetryPolicy()
    assert policy.is_retryable(_error(status)) is retried
    assert (policy.delay(0, _error(status)) is not None) is retried


def test_quota_is_never_retried_even_when_the_server_says_so():
    quota = _error(429, {"error": {"message": "quota", "code": "insufficient_quota"}})
    assert isinstance(quota, InsufficientCreditsError)
    assert RetryPolicy().delay(0, quota, {"x-should-retry": "true"}) is None
    assert RetryPolicy().delay(0, _error(402)) is None


def test_x_should_retry_overrides_the_status():
    policy = RetryPolicy()
    assert policy.delay(0, _error(400), {"x-should-retry": "true"}) is not None
    assert policy.delay(0, _error(503), {"X-Should-Retry": "false"}) is None
    assert policy.delay(0, _error(503), {"x-should-retry": "maybe"}) is not None


def test_connection_errors_and_timeouts_are_retried_protocol_errors_are_not():
    policy = RetryPolicy()
    assert policy.delay(0, APIConnectionError("reset")) is not None
    assert policy.delay(0, APITimeoutError("slow")) is not None
    assert policy.delay(0, ProtocolError("not json")) is None


def test_budget():
    policy = RetryPolicy(max_retries=2)
    assert policy.delay(1, _error(503)) is not None
    assert policy.delay(2, _error(503)) is None
    assert RetryPolicy(max_retries=0).delay(0, _error(503)) is None
    with pytest.raises(UsageError):
        RetryPolicy(max_retries=-1)


@pytest.mark.parametrize("retry", range(8))
def test_backoff_bounds(retry):
    base = min(0.5 * 2**retry, 8.0)
    assert RetryPolicy(random=lambda: 0.0).backoff(retry) == pytest.approx(base)
    assert RetryPolicy(random=lambda: 0.999999).backoff(retry) == pytest.approx(
        base * 0.75, rel=1e-5
    )
    real = RetryPolicy().backoff(retry)
    assert base * 0.75 <= real <= base


def test_backoff_does_not_overflow_for_absurd_retry_numbers():
    assert RetryPolicy(random=lambda: 0.0).backoff(10_000) == 8.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "10"}, 0.01),
        ({"retry-after": "60"}, 60.0),
        ({"retry-after": "0"}, "backoff"),
        ({"retry-after": "-5"}, "backoff"),
        ({"retry-after": "junk"}, "backoff"),
        ({"retry-after": _http_date(-60)}, "backoff"),
    ],
)
def test_server_wait_honoured_within_the_cap(headers, expected):
    policy = RetryPolicy(random=lambda: 0.0)
    delay = policy.delay(0, _error(429, headers=headers), headers)
    assert delay == pytest.approx(0.5 if expected == "backoff" else expected, abs=1e-3)


def test_server_wait_beyond_the_cap_is_final_and_explained():
    policy = RetryPolicy(max_retry_after=60)
    headers = {"retry-after": "3600"}
    error = _error(429, headers=headers)
    assert policy.delay(0, error, headers) is None
    assert policy.wait_too_long(headers) == 3600
    policy.note_wait_too_long(error, 3600)
    assert error.retry_after == 3600
    assert "3600 s" in str(error)
    assert RetryPolicy(max_retry_after=7200).delay(0, error, headers) == 3600


# -- through the client, with a scripted fake server ---------------------------------------------

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
