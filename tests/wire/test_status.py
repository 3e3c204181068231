"""Error bodies and statuses: every pasted error body classified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fuzzing import MANY, completion, headers, json_value

from agentloop import APIStatusError
from agentloop._errors import (
    BadRequestError,
    ContextLengthError,
    InsufficientCreditsError,
    InternalServerError,
    RateLimitError,
)
from agentloop._wire.response import parse_completion
from agentloop._wire.status import status_error


@MANY
@given(st.integers(100, 599), completion | json_value | st.text(max_size=60), headers)
def test_status_error_always_classifies(status, body, head):
    error = status_error(status, body, head)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert isinstance(error.message, str)
    assert len(error.message) < 5_000


ISSUE_BODIES = Path(__file__).parents[1] / "fixtures" / "recordings"


ISSUE_CASES = {
    "openai__400_context_length_exceeded": (
        ContextLengthError,
        ContextLengthError,
        "maximum context length",
    ),
    "openai__400_invalid_json_schema_response_format": (
        BadRequestError,
        BadRequestError,
        "Invalid schema",
    ),
    "openai__429_insufficient_quota": (InsufficientCreditsError, InsufficientCreditsError, "quota"),
    "openai__429_insufficient_quota_legacy_code_null": (
        InsufficientCreditsError,
        InsufficientCreditsError,
        "quota",
    ),
    "openai__429_rate_limit_exceeded_tokens": (
        RateLimitError,
        InternalServerError,
        "Rate limit reached",
    ),
    "openai__500_server_error": (InternalServerError, InternalServerError, "server had an error"),
    "openrouter__400_provider_error_wrapping_azure_invalid_schema": (
        BadRequestError,
        BadRequestError,
        "Invalid schema for response_format",
    ),
    "openrouter__402_insufficient_credits": (
        InsufficientCreditsError,
        InsufficientCreditsError,
        "credits",
    ),
    "openrouter__402_insufficient_credits_with_metadata": (
        InsufficientCreditsError,
        InsufficientCreditsError,
        "Insufficient credits",
    ),
}


@pytest.mark.parametrize("name", sorted(ISSUE_CASES))
def test_issue_error_bodies(name: str) -> None:
    """Each pasted error body: with its status (what the transport sees) and without one (the
    same body inside a 200, where the parser infers the status from the body alone)."""
    record = json.loads((ISSUE_BODIES / f"issue_bodies__{name}.json").read_text(encoding="utf-8"))
    status, data = record["response"]["status"], record["response"]["body"]
    with_status, without_status, words = ISSUE_CASES[name]
    typed = status_error(status, data)
    assert type(typed) is with_status
    assert words in typed.message
    with pytest.raises(APIStatusError) as caught:
        parse_completion(data)
    assert type(caught.value) is without_status
    assert words in caught.value.message
    assert caught.value.body == data


def test_openrouter_int_code_gives_the_status() -> None:
    with pytest.raises(RateLimitError) as caught:
        parse_completion({"error": {"code": 429, "message": "Provider returned error"}})
    assert caught.value.status_code == 429


def test_azure_numeric_string_code() -> None:
    with pytest.raises(RateLimitError):
        parse_completion({"error": {"code": "429", "message": "Requests exceeded"}})


def test_groq_status_code_inside_the_error() -> None:
    error = {"message": "Tool choice is required", "code": "tool_use_failed", "status_code": 400}
    with pytest.raises(BadRequestError, match="Tool choice is required"):
        parse_completion({"error": error})


def test_string_error() -> None:
    with pytest.raises(InternalServerError, match="overloaded"):
        parse_completion({"error": "overloaded"})
