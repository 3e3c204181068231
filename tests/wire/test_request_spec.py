"""Every body the request builder makes is a valid `CreateChatCompletionRequest` of the spec.

The schema is bundled into tests/fixtures/openapi_chat_request.json by
tools/extract_openapi_schema.py (run it again when the spec changes).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentloop._messages import (
    AssistantMessage,
    ModelRequest,
    ResponseFormat,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from agentloop._settings import ModelSettings
from agentloop._wire.profiles import (
    DEFAULT_PROFILE,
    LLAMA_CPP_PROFILE,
    OPENAI_PROFILE,
    OPENROUTER_PROFILE,
    ModelProfile,
)
from agentloop._wire.request import build_body, encode_body

FIXTURE = Path(__file__).parents[1] / "fixtures" / "openapi_chat_request.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(FIXTURE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


PROFILES = {
    "openai": OPENAI_PROFILE,
    "openrouter": OPENROUTER_PROFILE,
    "llama_cpp": LLAMA_CPP_PROFILE,
    "default": DEFAULT_PROFILE,
}

CALLS = (ToolCall("call_1", "weather", '{"city":"Oslo"}'), ToolCall("call_2", "clock", ""))
IMAGE = {
    "type": "image_url",
    "image_url": {"url": "https://example.invalid/a.png", "detail": "low"},
}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {
    "type": "file",
    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA=="},
}
CONVERSATIONS: dict[str, tuple[Any, ...]] = {
    "user_only": (UserMessage("hi"),),
    "system_parts": (
        SystemMessage("be brief"),
        UserMessage(({"type": "text", "text": "what is this?"}, IMAGE, AUDIO, FILE)),
    ),
    "tool_round": (
        SystemMessage("use tools", role="developer"),
        UserMessage("weather in Oslo and the time?"),
        AssistantMessage(tool_calls=CALLS),
        ToolMessage("call_1", "sunny", name="weather"),
        ToolMessage("call_2", "error: no clock", name="clock", is_error=True),
        AssistantMessage("Sunny; no clock.", refusal=""),
        UserMessage("thanks"),
    ),
    "reasoning_refusal": (
        UserMessage("hmm"),
        AssistantMessage(
            "text beside a call",
            tool_calls=CALLS[:1],
            reasoning={
                "reasoning": "step by step",
                "reasoning_details": [{"type": "reasoning.text", "text": "step", "index": 0}],
            },
        ),
        ToolMessage("call_1", "{}"),
        AssistantMessage(refusal="I can't help with that."),
        AssistantMessage(),
        UserMessage("ok"),
    ),
}

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLSETS: dict[str, tuple[ToolDefinition, ...]] = {
    "none": (),
    "strict": (ToolDefinition("weather", "Weather of a city.", WEATHER_PARAMS, strict=True),),
    "mixed": (
        ToolDefinition("weather", "Weather of a city.", WEATHER_PARAMS, strict=True),
        ToolDefinition("clock", "", {"type": "object", "properties": {}}),
    ),
}

SETTINGS: dict[str, ModelSettings | None] = {
    "none": None,
    "sampling": ModelSettings(
        max_completion_tokens=100,
        temperature=0.0,
        top_p=1.0,
        stop="END",
        frequency_penalty=-2.0,
        presence_penalty=2.0,
        seed=42,
        logit_bias={"50256": -100, "11": 100},
        logprobs=True,
        top_logprobs=20,
    ),
    "service": ModelSettings(
        stop=["a", "b", "c", "d"],
        user="user-1",
        store=True,
        metadata={"run": "r1"},
        service_tier="auto",
        reasoning_effort="low",
        timeout=5.0,
        extra_headers={"X-Trace": "t"},
    ),
    "tools_required": ModelSettings(tool_choice="required", parallel_tool_calls=False),
    "tools_named": ModelSettings(tool_choice="weather", parallel_tool_calls=True),
    "tools_none": ModelSettings(tool_choice="none"),
    "verbatim_format": ModelSettings(response_format={"type": "json_object"}),
    "text_format": ModelSettings(response_format={"type": "text"}, extra_body={"n": 1}),
}

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
OUTPUTS: dict[str, ResponseFormat | None] = {
    "none": None,
    "strict": ResponseFormat("final_answer", OUTPUT_SCHEMA, strict=True, description="The answer"),
    "loose": ResponseFormat("final-answer", OUTPUT_SCHEMA),
}
OPENROUTER_EXTRA = {
    "provider": {"order": ["openai"], "allow_fallbacks": False},
    "models": ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"],
    "reasoning": {"effort": "low"},
    "usage": {"include": True},
}


def _nones(value: Any, path: str = "") -> list[str]:
    """Paths of None values, except an assistant turn's null content (allowed with calls)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None and not (key == "content" and value.get("role") == "assistant"):
                found.append(f"{path}.{key}")
            found.extend(_nones(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_nones(item, f"{path}[{index}]"))
    return found


def _cases(profile: ModelProfile, stream: bool):
    product = itertools.product(CONVERSATIONS, TOOLSETS, SETTINGS, OUTPUTS)
    for conversation, toolset, settings, output in product:
        tools = TOOLSETS[toolset]
        if settings == "tools_named" and not tools:
            continue  # naming a tool that is not there is a UsageError (tested elsewhere)
        request = ModelRequest(
            CONVERSATIONS[conversation], tools, SETTINGS[settings], OUTPUTS[output]
        )
        extra = OPENROUTER_EXTRA if profile is OPENROUTER_PROFILE else None
        built = build_body("gpt-4o-mini", profile, request, stream=stream, extra=extra)
        sent = json.loads(encode_body(built))
        yield (conversation, toolset, settings, output), request, sent


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("profile_name", list(PROFILES))
def test_every_body_validates_against_the_spec(validator, profile_name, stream):
    profile = PROFILES[profile_name]
    failures: list[str] = []
    count = 0
    checked: set[str] = set()
    for case, _request, sent in _cases(profile, stream):
        count += 1
        # Messages are validated item by item, independently of the other fields: each distinct
        # conversation is checked once, whole bodies with a one-message stand-in (same verdict,
        # a fraction of the time).
        conversation = json.dumps(sent["messages"])
        parts = [{**sent, "messages": [{"role": "user", "content": "x"}]}]
        if conversation not in checked:
            checked.add(conversation)
            parts.append(sent)
        for part in parts:
            for error in validator.iter_errors(part):
                failures.append(f"{case}: {error.json_path}: {error.message[:200]}")
    assert count >= 250
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("profile_name", list(PROFILES))
def test_what_must_not_be_sent(profile_name, stream):
    profile = PROFILES[profile_name]
    for case, request, sent in _cases(profile, stream):
        assert not _nones(sent), (case, _nones(sent))
        if not request.tools:
            assert "parallel_tool_calls" not in sent, case
            assert "tool_choice" not in sent, case
            assert "tools" not in sent, case
        if "parallel_tool_calls" in sent:
            assert profile.parallel_tool_calls, case
        if not stream:
            assert "stream" not in sent, case
            assert "stream_options" not in sent, case
        else:
            assert sent["stream"] is True
            assert ("stream_options" in sent) == profile.stream_usage, case
        if "top_logprobs" in sent:
            assert sent.get("logprobs") is True, case
        if not profile.strict_tools:
            assert all("strict" not in tool["function"] for tool in sent.get("tools", [])), case
        if not profile.tool_choice_required:
            assert sent.get("tool_choice") != "required", case
        assert {"max_tokens", "max_completion_tokens"} & sent.keys() <= {profile.max_tokens_field}
        assert "timeout" not in sent
        assert "extra_headers" not in sent
        for message in sent["messages"]:
            assert "name" not in message or message["role"] != "tool", case
            if message["role"] == "assistant" and message.get("tool_calls"):
                assert message["content"] != "" or not profile.null_content_with_tool_calls


def test_spec_fixture_rejects_what_the_api_rejects(validator):
    """The bundled schema is not vacuous: it catches the mistakes we guard against."""
    good = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert validator.is_valid(good)
    bad = [
        {"model": "m", "messages": []},
        {"messages": [{"role": "user", "content": "hi"}]},
        {**good, "messages": [{"role": "tool", "content": "x"}]},
        {**good, "tool_choice": "sometimes"},
        {**good, "temperature": 3},
        {**good, "top_logprobs": 21},
        {**good, "response_format": {"type": "json_schema"}},
        {**good, "stop": ["a", "b", "c", "d", "e"]},
        {**good, "tools": [{"type": "function"}]},
    ]
    for instance in bad:
        assert not validator.is_valid(instance), instance
