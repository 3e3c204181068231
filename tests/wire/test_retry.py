"""The retry policy: which failures are retried, how long to wait, Retry-After parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fuzzing import MANY, headers

from agentloop._errors import (
    APIConnectionError,
    APITimeoutError,
    InsufficientCreditsError,
    ProtocolError,
    UsageError,
)
from agentloop._wire.retry import RetryPolicy, parse_retry_after
from agentloop._wire.status import status_error


@MANY
@given(headers, st.integers(0, 5))
def test_retry_after_and_delay_never_raise(head, retry):
    asked = parse_retry_after(head)
    assert asked is None or math.isfinite(asked)
    policy = RetryPolicy(random=lambda: 0.5)
    error = status_error(503, {"error": {"message": "x"}}, head)
    delay = policy.delay(retry, error, head)
    assert delay is None or 0 <= delay <= policy.max_retry_after


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
