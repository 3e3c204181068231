"""Non-streamed bodies: the quirks of real servers and malformed answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from support.fuzzing import MANY, completion, json_value, outcome, typed
from support.unreported import UNKNOWN, silent

from agentloop import Agent, RequestUsage
from agentloop._errors import ProtocolError
from agentloop._messages import ToolCall
from agentloop._wire.response import parse_completion
from agentloop.testing import FakeServer


@MANY
@given(completion | json_value)
def test_parse_completion_raises_only_typed_errors(body):
    response, exc = outcome(parse_completion, body)
    if exc is not None:
        assert typed(exc), repr(exc)
    else:
        for call in response.message.tool_calls:
            assert call.id
            assert isinstance(call.arguments, str)
        ids = [c.id for c in response.message.tool_calls]
        assert len(set(ids)) == len(ids)


def body(message: dict[str, Any], finish: Any = "stop", **top: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    base.update(top)
    return base


def fn_call(id: Any, name: str = "f", arguments: Any = "{}") -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_plain_text_answer() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    result = parse_completion(
        body({"content": "Hi", "refusal": None}, usage=usage, system_fingerprint="fp")
    )
    assert result.message.content == "Hi"
    assert result.message.tool_calls == ()
    assert result.message.refusal is None
    assert result.usage == RequestUsage(9, 3)
    assert (result.id, result.model, result.finish_reason) == ("chatcmpl-1", "m-1", "stop")
    assert result.extra == {"object": "chat.completion", "system_fingerprint": "fp"}


def test_choice_zero_is_chosen_whatever_the_order() -> None:
    data = body({"content": "zero"})
    data["choices"].insert(0, {"index": 1, "message": {"content": "one"}, "finish_reason": "stop"})
    assert parse_completion(data).message.content == "zero"
    no_index = {"choices": [{"message": {"content": "first"}}, {"message": {"content": "second"}}]}
    assert parse_completion(no_index).message.content == "first"


@pytest.mark.parametrize("content", [None, ""])
def test_tool_calls_with_null_or_empty_content(content: Any) -> None:
    result = parse_completion(
        body({"content": content, "tool_calls": [fn_call("c1")]}, "tool_calls")
    )
    assert result.message.content is None
    assert result.message.tool_calls == (ToolCall("c1", "f", "{}"),)
    assert result.finish_reason == "tool_calls"


def test_text_beside_tool_calls_is_kept() -> None:
    result = parse_completion(body({"content": "Checking.", "tool_calls": [fn_call("c1")]}))
    assert result.message.content == "Checking."
    assert len(result.message.tool_calls) == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (None, "{}"),
        ("", "{}"),
        ('{"a": 1}', '{"a": 1}'),
        ('{"a": 1', '{"a": 1'),  # invalid JSON is kept raw: the tool layer reports it
        ({"a": "é"}, '{"a": "é"}'),
    ],
)
def test_arguments_are_raw_text_with_empty_as_empty_object(arguments: Any, expected: str) -> None:
    result = parse_completion(body({"tool_calls": [fn_call("c1", arguments=arguments)]}))
    assert result.message.tool_calls[0].arguments == expected


def test_missing_arguments_key_is_empty_object() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f"}}
    assert parse_completion(body({"tool_calls": [call]})).message.tool_calls[0].arguments == "{}"


def test_calls_without_ids_get_deterministic_unique_ids() -> None:
    data = body({"tool_calls": [fn_call(""), fn_call(None, "g"), {"function": {"name": "h"}}]})
    ids = [c.id for c in parse_completion(data).message.tool_calls]
    assert ids == [c.id for c in parse_completion(data).message.tool_calls]
    assert len(set(ids)) == 3
    assert all(i.startswith("call_") for i in ids)
    other = parse_completion({**data, "id": "chatcmpl-2"}).message.tool_calls
    assert ids[0] != other[0].id


def test_duplicate_ids_are_made_unique() -> None:
    data = body({"tool_calls": [fn_call("x"), fn_call("x", "g"), fn_call("x_2", "h")]})
    assert [c.id for c in parse_completion(data).message.tool_calls] == ["x", "x_2", "x_2_2"]


def test_custom_tool_call_and_empty_custom_beside_function() -> None:
    snowflake = {
        "id": "t1",
        "type": "function",
        "custom": {"input": "", "name": ""},
        "function": {"arguments": '{"city":"Paris"}', "name": "get_weather"},
    }
    custom = {"id": "t2", "type": "custom", "custom": {"name": "grep", "input": "needle"}}
    calls = parse_completion(body({"tool_calls": [snowflake, custom]})).message.tool_calls
    assert calls == (
        ToolCall("t1", "get_weather", '{"city":"Paris"}'),
        ToolCall("t2", "grep", "needle"),
    )


def test_legacy_function_call() -> None:
    legacy = body(
        {"content": None, "function_call": {"name": "f", "arguments": '{"a":1}'}}, "function_call"
    )
    result = parse_completion(legacy)
    assert [(c.name, c.arguments) for c in result.message.tool_calls] == [("f", '{"a":1}')]
    assert result.finish_reason == "tool_calls"
    empty = body({"content": "hi", "function_call": {"name": "", "arguments": ""}})
    assert parse_completion(empty).message.tool_calls == ()


@pytest.mark.parametrize(("refusal", "expected"), [(None, None), ("", None), ("No.", "No.")])
def test_refusal_by_truthiness(refusal: Any, expected: Any) -> None:
    assert parse_completion(body({"content": None, "refusal": refusal})).message.refusal == expected


def test_content_as_list_of_parts_with_thinking() -> None:
    content = [
        {"type": "thinking", "closed": True, "thinking": [{"type": "text", "text": "2+2 is 4"}]},
        {"type": "text", "text": "4"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "!"},
    ]
    result = parse_completion(body({"content": content}))
    assert result.message.content == "4!"
    assert result.message.reasoning == {"thinking": "2+2 is 4"}


def test_reasoning_fields_are_kept_verbatim_and_empty_ones_dropped() -> None:
    details = [{"type": "reasoning.text", "text": "t", "signature": "s", "index": 0}]
    message = {
        "content": "a",
        "reasoning": "r",
        "reasoning_content": "",
        "reasoning_details": details,
    }
    result = parse_completion(body(message))
    assert result.message.reasoning == {"reasoning": "r", "reasoning_details": details}


@pytest.mark.parametrize(
    ("content", "text", "think"),
    [
        ("<think>\nHmm.\n</think>\n\nAnswer", "Answer", "Hmm."),
        ("  <think>x</think>y", "y", "x"),
        ("<think>\nstill thinking when cut", None, "still thinking when cut"),
        ("<think></think>Answer", "Answer", None),
        ("Answer <think>not reasoning</think>", "Answer <think>not reasoning</think>", None),
    ],
)
def test_think_tags_at_the_start_move_to_reasoning(content: str, text: Any, think: Any) -> None:
    result = parse_completion(body({"content": content}))
    assert result.message.content == text
    assert result.message.reasoning.get("think") == think


@pytest.mark.parametrize(
    ("raw", "normalized", "kept"),
    [
        ("stop", "stop", "stop"),
        ("eos", "stop", "eos"),
        ("length", "length", "length"),
        ("tool_calls", "tool_calls", "tool_calls"),
        ("function_call", "tool_calls", "function_call"),
        ("content_filter", "content_filter", "content_filter"),
        ("error", "error", "error"),
        ("", None, None),
        (None, None, None),
        ("something_new", None, "something_new"),
    ],
)
def test_finish_reason(raw: Any, normalized: Any, kept: Any) -> None:
    result = parse_completion(body({"content": "a"}, raw))
    assert (result.finish_reason, result.raw_finish_reason) == (normalized, kept)


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ({}, RequestUsage(reported=False)),
        ({"usage": None}, RequestUsage(reported=False)),
        ({"usage": {}}, RequestUsage(reported=False)),
        ({"usage": {"prompt_tokens": 0, "completion_tokens": 0}}, RequestUsage()),
        (
            {
                "usage": {
                    "prompt_tokens": 100,
                    "completion_tokens": 50,
                    "prompt_tokens_details": {"cached_tokens": 40},
                    "completion_tokens_details": {"reasoning_tokens": 30},
                    "cost": 0.0012,
                    "is_byok": False,
                }
            },
            RequestUsage(100, 50, 40, 30, 0.0012),
        ),
        (
            {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0}},
            RequestUsage(10, 2, cost=0.0),
        ),
        ({"usage": {"prompt_tokens": 10, "prompt_cache_hit_tokens": 8}}, RequestUsage(10, 0, 8)),
        ({"usage": {"prompt_tokens": 10, "cached_tokens": 4}}, RequestUsage(10, 0, 4)),
        (
            {"usage": {"prompt_tokens": True, "completion_tokens": "7"}},
            RequestUsage(reported=False),
        ),
        ({"usage": {"completion_tokens": 7}}, RequestUsage(0, 7)),
        ({"usage": {"cost": 0.5}}, RequestUsage(cost=0.5, reported=False)),
        ({"x_groq": {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}}, RequestUsage(3, 4)),
    ],
)
def test_usage(top: dict[str, Any], expected: RequestUsage) -> None:
    assert parse_completion(body({"content": "a"}, **top)).usage == expected


def test_error_null_beside_choices_is_not_an_error() -> None:
    assert parse_completion(body({"content": "a"}, error=None)).message.content == "a"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (None, "not a JSON object"),
        ([1, 2], "not a JSON object"),
        ("<html>502</html>", "not a JSON object"),
        ({"id": "x"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": {"0": {}}}, "no choices"),
        ({"choices": ["text"]}, "choices\\[0\\] is not an object"),
        ({"choices": [{"index": 0}]}, "message is not an object"),
        ({"choices": [{"index": 0, "message": "hi"}]}, "message is not an object"),
        (body({"content": 42}), "content is neither text nor parts"),
        (body({"content": ["ok", 3]}), "content part is not an object"),
        (body({"tool_calls": {"id": "x"}}), "tool_calls is not a list"),
        (body({"tool_calls": ["x"]}), "tool call is not an object"),
        (body({"tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]}), "no function name"),
        (body({"tool_calls": [fn_call("x", arguments=12)]}), "arguments are neither text nor JSON"),
    ],
)
def test_malformed_bodies_are_protocol_errors(data: Any, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        parse_completion(data)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), -5, True, "12"])
def test_non_finite_or_odd_usage_numbers_count_as_zero(bad: Any) -> None:
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
        "usage": {"prompt_tokens": bad, "completion_tokens": 3, "cost": bad},
    }
    usage = parse_completion(body).usage
    assert usage.input_tokens == 0
    assert usage.output_tokens == 3
    assert usage.cost is None


@pytest.mark.anyio
async def test_a_body_without_usage_is_unreported() -> None:
    with FakeServer([silent("hi")], model_name="my-local") as server:
        result = await Agent(server.model()).run("hello")
    assert result.usage.requests == 1 and result.usage.unreported_requests == 1
    assert not result.usage.fully_reported
    assert result.usage.describe_tokens() == UNKNOWN
    assert result.requests[0].usage_reported is False
    assert result.timing.output_tokens_per_second is None
