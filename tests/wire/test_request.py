"""The request body and headers: what is sent for each message, tool, setting and profile."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from agentloop._errors import UsageError
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
)
from agentloop._wire.request import build_body, build_headers, encode_body, message_to_wire

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolDefinition("weather", "Weather of a city.", PARAMS, strict=True)
CLOCK = ToolDefinition("clock", "", {"type": "object", "properties": {}})
HELLO = (UserMessage("hi"),)


def body(request: ModelRequest, profile=OPENAI_PROFILE, *, stream=False, extra=None):
    return build_body("m", profile, request, stream=stream, extra=extra)


def test_minimal_body_has_only_model_and_messages():
    assert body(ModelRequest(HELLO)) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_system_developer_user_and_parts():
    parts = (
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    )
    wire = body(
        ModelRequest(
            (SystemMessage("be brief"), SystemMessage("dev", role="developer"), UserMessage(parts))
        )
    )["messages"]
    assert wire[0] == {"role": "system", "content": "be brief"}
    assert wire[1] == {"role": "developer", "content": "dev"}
    assert wire[2] == {"role": "user", "content": list(parts)}
    assert wire[2]["content"][1] is parts[1]  # reused, not copied


@pytest.mark.parametrize(("profile", "expected"), [(OPENAI_PROFILE, None), (LLAMA_CPP_PROFILE, "")])
def test_tool_only_assistant_turn_content_follows_profile(profile, expected):
    message = AssistantMessage(tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),))
    wire = message_to_wire(message, profile)
    assert wire["content"] == expected
    assert "content" in wire
    assert wire["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert "refusal" not in wire


def test_assistant_text_beside_calls_is_kept_and_empty_arguments_become_object():
    message = AssistantMessage("checking", tool_calls=(ToolCall("c1", "clock", ""),))
    wire = message_to_wire(message, OPENAI_PROFILE)
    assert wire["content"] == "checking"
    assert wire["tool_calls"][0]["function"]["arguments"] == "{}"


def test_assistant_reasoning_is_sent_back_verbatim_and_empty_refusal_is_not():
    details = [{"type": "reasoning.encrypted", "data": "xyz", "id": "r1"}]
    message = AssistantMessage(
        "answer",
        refusal="",
        reasoning={"reasoning": "thought", "reasoning_details": details, "reasoning_content": None},
    )
    wire = message_to_wire(message, OPENROUTER_PROFILE)
    assert wire == {
        "role": "assistant",
        "content": "answer",
        "reasoning": "thought",
        "reasoning_details": details,
    }
    assert wire["reasoning_details"] is details


def test_refusal_turn_is_sent_with_refusal_text():
    wire = message_to_wire(AssistantMessage(refusal="I can't help with that."), OPENAI_PROFILE)
    assert wire == {"role": "assistant", "content": None, "refusal": "I can't help with that."}


def test_plain_empty_assistant_turn_sends_empty_string():
    assert message_to_wire(AssistantMessage(), OPENAI_PROFILE) == {
        "role": "assistant",
        "content": "",
    }


def test_tool_message_has_no_name():
    wire = message_to_wire(
        ToolMessage("c1", "sunny", name="weather", is_error=True), OPENAI_PROFILE
    )
    assert wire == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


def test_no_messages_is_a_usage_error():
    with pytest.raises(UsageError, match="at least one message"):
        body(ModelRequest(()))


def test_tools_strict_only_when_profile_allows_and_schema_reused():
    strict = body(ModelRequest(HELLO, tools=(WEATHER, CLOCK)))["tools"]
    assert strict[0] == {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather of a city.",
            "parameters": PARAMS,
            "strict": True,
        },
    }
    assert strict[0]["function"]["parameters"] is PARAMS
    assert strict[1]["function"] == {"name": "clock", "parameters": CLOCK.parameters}
    loose = body(ModelRequest(HELLO, tools=(WEATHER,)), DEFAULT_PROFILE)["tools"]
    assert "strict" not in loose[0]["function"]


@pytest.mark.parametrize(
    ("choice", "profile", "expected"),
    [
        ("auto", OPENAI_PROFILE, "auto"),
        ("none", DEFAULT_PROFILE, "none"),
        ("required", OPENAI_PROFILE, "required"),
        ("required", DEFAULT_PROFILE, "auto"),
        ("weather", DEFAULT_PROFILE, {"type": "function", "function": {"name": "weather"}}),
    ],
)
def test_tool_choice(choice, profile, expected):
    request = ModelRequest(HELLO, tools=(WEATHER,), settings=ModelSettings(tool_choice=choice))
    with capture_logs() as logs:
        assert body(request, profile)["tool_choice"] == expected
    downgraded = [e for e in logs if e["event"] == "tool_choice_downgraded"]
    assert bool(downgraded) == (choice == "required" and profile is DEFAULT_PROFILE)


def test_tool_choice_naming_an_unknown_tool_is_a_usage_error():
    request = ModelRequest(HELLO, tools=(WEATHER,), settings=ModelSettings(tool_choice="nope"))
    with pytest.raises(UsageError, match=r"'nope'.*weather"):
        body(request)


def test_tool_choice_and_parallel_calls_are_not_sent_without_tools():
    settings = ModelSettings(tool_choice="required", parallel_tool_calls=False)
    sent = body(ModelRequest(HELLO, settings=settings))
    assert "tool_choice" not in sent
    assert "parallel_tool_calls" not in sent
    assert "tools" not in sent


def test_parallel_tool_calls_only_when_profile_supports_it():
    request = ModelRequest(
        HELLO, tools=(WEATHER,), settings=ModelSettings(parallel_tool_calls=False)
    )
    assert body(request, OPENAI_PROFILE)["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in body(request, LLAMA_CPP_PROFILE)


OUTPUT = ResponseFormat(
    "answer",
    {"type": "object", "properties": {"x": {"type": "integer"}}},
    strict=True,
    description="The answer.",
)


@pytest.mark.parametrize(
    ("support", "expected"),
    [
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "description": "The answer.",
                    "schema": OUTPUT.schema,
                    "strict": True,
                },
            },
        ),
        ("json_object_schema", {"type": "json_object", "schema": OUTPUT.schema}),
        ("json_object", {"type": "json_object"}),
        ("none", None),
    ],
)
def test_response_format_per_profile(support, expected):
    profile = DEFAULT_PROFILE.replace(response_format=support, strict_tools=True)
    sent = body(ModelRequest(HELLO, response_format=OUTPUT), profile)
    assert sent.get("response_format") == expected


def test_settings_response_format_is_sent_verbatim_and_wins():
    verbatim = {"type": "json_object"}
    request = ModelRequest(
        HELLO, response_format=OUTPUT, settings=ModelSettings(response_format=verbatim)
    )
    assert body(request)["response_format"] is verbatim


def test_non_strict_output_omits_strict_and_description():
    sent = body(ModelRequest(HELLO, response_format=ResponseFormat("out", {"type": "object"})))
    assert sent["response_format"]["json_schema"] == {"name": "out", "schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("profile", "field"),
    [(OPENAI_PROFILE, "max_completion_tokens"), (OPENROUTER_PROFILE, "max_tokens")],
)
def test_max_tokens_field_follows_profile(profile, field):
    sent = body(ModelRequest(HELLO, settings=ModelSettings(max_completion_tokens=64)), profile)
    assert sent[field] == 64
    other = {"max_completion_tokens", "max_tokens"} - {field}
    assert not other & sent.keys()


def test_every_setting_reaches_the_body():
    settings = ModelSettings(
        max_completion_tokens=10,
        temperature=0.5,
        top_p=0.9,
        stop=("a", "b"),
        frequency_penalty=0.1,
        presence_penalty=-0.1,
        seed=7,
        logit_bias=MappingProxyType({"50256": -100}),
        logprobs=True,
        top_logprobs=3,
        user="u1",
        store=False,
        metadata={"k": "v"},
        service_tier="auto",
        reasoning_effort="low",
        timeout=30,
        extra_headers={"X-Trace": "1"},
    )
    sent = body(ModelRequest(HELLO, settings=settings))
    assert {k: v for k, v in sent.items() if k not in ("model", "messages")} == {
        "max_completion_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["a", "b"],
        "frequency_penalty": 0.1,
        "presence_penalty": -0.1,
        "seed": 7,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 3,
        "user": "u1",
        "store": False,
        "metadata": {"k": "v"},
        "service_tier": "auto",
        "reasoning_effort": "low",
    }


def test_stream_options_only_with_stream_and_profile_support():
    assert body(ModelRequest(HELLO), stream=True)["stream_options"] == {"include_usage": True}
    assert body(ModelRequest(HELLO), stream=True)["stream"] is True
    assert "stream_options" not in body(ModelRequest(HELLO), LLAMA_CPP_PROFILE, stream=True)
    plain = body(ModelRequest(HELLO))
    assert "stream" not in plain
    assert "stream_options" not in plain


def test_extra_then_extra_body_merged_last():
    settings = ModelSettings(temperature=1.0, extra_body={"temperature": 0.2, "top_k": 5})
    sent = body(
        ModelRequest(HELLO, settings=settings),
        extra={"provider": {"order": ["a"]}, "top_k": 1},
    )
    assert sent["temperature"] == 0.2
    assert sent["top_k"] == 5
    assert sent["provider"] == {"order": ["a"]}


def test_encode_body_accepts_mappings_and_tuples_and_rejects_nan():
    data = {"a": MappingProxyType({"b": (1, 2)}), "s": "é"}
    assert json.loads(encode_body(data)) == {"a": {"b": [1, 2]}, "s": "é"}
    assert "é".encode() in encode_body(data)
    with pytest.raises(UsageError, match="JSON"):
        encode_body({"x": float("nan")})
    with pytest.raises(UsageError, match="set"):
        encode_body({"x": {1, 2}})


def test_headers_key_placement_and_precedence():
    headers = build_headers(
        stream=False,
        api_key="sk-secret",
        default_headers={"X-Title": "app", "Authorization": "wrong"},
        extra_headers={"X-Title": "run"},
    )
    assert headers["Authorization"] == "Bearer sk-secret"
    assert headers["X-Title"] == "run"
    assert headers["Accept"] == "application/json"
    azure = build_headers(stream=True, api_key="k", api_key_header="api-key")
    assert azure["api-key"] == "k"
    assert "Authorization" not in azure
    assert azure["Accept"] == "text/event-stream"
    assert "Authorization" not in build_headers(stream=False, api_key=None)
