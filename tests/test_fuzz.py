"""Fuzzing the readers of what servers and models send: the SSE decoder, the stream accumulator,
the response parser, the error classifier, the Retry-After parser and the tool-argument parser.

Thousands of generated inputs (200 per property by default, ``AGENTLOOP_FUZZ_EXAMPLES`` for
more); the only exceptions allowed out are agentloop's typed errors
(`AgentloopError`, or the `ToolRetry` signal for arguments), never a bare KeyError, TypeError,
AttributeError, IndexError, RecursionError or UnicodeError.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentloop import AgentloopError, APIStatusError, ToolRetry, tool
from agentloop._arguments import ArgumentProblems, load_arguments
from agentloop._tools import Tool
from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.response import parse_completion
from agentloop._wire.retry import RetryPolicy, parse_retry_after
from agentloop._wire.sse import SSEDecoder, SSEEvent
from agentloop._wire.status import status_error

ALL_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]
# AGENTLOOP_FUZZ_EXAMPLES=5000 for a deep run; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("AGENTLOOP_FUZZ_EXAMPLES", "200"))
MANY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=ALL_CHECKS)
SOME = settings(
    max_examples=max(EXAMPLES // 3, 50), deadline=None, suppress_health_check=ALL_CHECKS
)

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=5,
)


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of `fields`, each of its own kind or of any JSON type (so the
    parsers go deep and also meet every type confusion), plus the odd unknown key."""
    return st.fixed_dictionaries(
        {}, optional={key: value | json_leaf for key, value in fields.items()}
    ) | st.dictionaries(st.text(max_size=6), json_value, max_size=2)


text = st.text(max_size=12)
small = st.integers(-2, 3)
finish = st.sampled_from(["stop", "length", "tool_calls", "error", "", "eos", "function_call"])
function = shaped({"name": text, "arguments": text | json_value, "input": text})
tool_delta = shaped(
    {"index": small, "id": text, "type": st.just("function"), "function": function,
     "custom": function}
)  # fmt: skip
part = shaped(
    {"type": st.sampled_from(["text", "thinking"]), "text": text, "thinking": text | st.lists(text)}
)
delta = shaped(
    {"role": st.just("assistant"), "content": text | st.lists(part, max_size=2),
     "refusal": text, "reasoning": text, "reasoning_content": text,
     "reasoning_details": st.lists(shaped({"type": text, "index": small, "text": text}),
                                   max_size=2),
     "tool_calls": st.lists(tool_delta, max_size=3), "function_call": function}
)  # fmt: skip
choice = shaped({"index": small, "delta": delta, "message": delta, "finish_reason": finish})
usage = shaped(
    {key: st.integers(-5, 10**6) | st.floats()
     for key in ("prompt_tokens", "completion_tokens", "cost", "cached_tokens")}
    | {"prompt_tokens_details": shaped({"cached_tokens": st.integers(-1, 10)})}
)  # fmt: skip
error_body = shaped(
    {"message": text, "code": st.integers(100, 700) | text, "type": text,
     "status_code": st.integers(100, 700),
     "metadata": shaped({"raw": text | json_value.map(json.dumps), "reasons": st.lists(text),
                         "flagged_input": text})}
)  # fmt: skip
chunk = shaped(
    {"id": text, "model": text, "choices": st.lists(choice, max_size=2), "usage": usage,
     "error": error_body, "x_groq": shaped({"usage": usage})}
)  # fmt: skip


def typed(exc: BaseException) -> bool:
    return isinstance(exc, AgentloopError)


def outcome(function: Any, *args: Any) -> tuple[Any, Exception | None]:
    """(value, None) or (None, the exception): assertions stay outside the ``except``."""
    try:
        return function(*args), None
    except Exception as exc:
        return None, exc


# --- the SSE decoder ----------------------------------------------------------------------------

sse_text = st.lists(
    st.sampled_from(["data: ", "data:", "data", "event: ", "id: ", "retry: ", ": ", "\n", "\r",
                     "\r\n", "\ufeff", "[DONE]", "{", "}", "x", "é", "\x00"])
    | st.text(max_size=10),
    max_size=40,
).map("".join)  # fmt: skip


def decode(data: bytes, cuts: list[int], max_size: int = 1 << 20) -> list[SSEEvent]:
    decoder = SSEDecoder(max_event_size=max_size)
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.close()


@MANY
@given(st.binary(max_size=300) | sse_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
       st.lists(st.integers(0, 300), max_size=20))  # fmt: skip
@example(b"\xef\xbb", [1])
@example(b"data: a\r", [8])
def test_sse_decoder_any_bytes_any_split_same_events(data, cuts):
    whole = decode(data, [])
    assert decode(data, cuts) == whole
    assert all(isinstance(event.data, str) for event in whole)


@SOME
@given(sse_text.map(str.encode), st.integers(1, 40), st.lists(st.integers(0, 200), max_size=8))
def test_sse_decoder_size_limit_is_a_protocol_error(data, limit, cuts):
    events, exc = outcome(decode, data, cuts, limit)
    if exc is not None:
        assert typed(exc), repr(exc)
        assert "exceeded the limit" in str(exc)
    else:
        assert all(len(event.data) <= limit for event in events)


@SOME
@given(st.binary(max_size=200))
def test_sse_decoder_byte_by_byte_equals_whole(data):
    assert decode(data, list(range(len(data)))) == decode(data, [])


# --- the stream accumulator ---------------------------------------------------------------------


def accumulate(events: list[SSEEvent]) -> None:
    def feed_all() -> Any:
        accumulator = StreamAccumulator()
        for event in events:
            accumulator.feed_event(event)
        return accumulator.response()

    response, exc = outcome(feed_all)
    if exc is not None:
        assert typed(exc), repr(exc)
    else:
        ids = [call.id for call in response.message.tool_calls]
        assert all(ids)
        assert len(set(ids)) == len(ids)


event_data = chunk.map(json.dumps) | json_value.map(json.dumps) | st.text(max_size=30)
sse_event = st.builds(
    SSEEvent, event_data, st.sampled_from(["message", "error", "ping"]),
)  # fmt: skip


@MANY
@given(st.lists(sse_event, max_size=6))
def test_stream_accumulator_raises_only_typed_errors(events):
    accumulate(events)


@MANY
@given(st.lists(chunk, max_size=6), st.booleans())
def test_stream_accumulator_on_chunk_shapes(chunks, done):
    events = [SSEEvent(json.dumps(c)) for c in chunks]
    accumulate([*events, SSEEvent("[DONE]")] if done else events)


# --- the response parser and the error classifier -----------------------------------------------

completion = chunk  # the same keys: id, model, choices (with message), usage, error


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


headers = st.dictionaries(
    st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "x-should-retry",
                     "x-request-id"]) | st.text(max_size=5),
    st.text(max_size=30) | st.sampled_from(["1e308", "-1e308", "nan", "inf", "-0", "1e-320",
                                            "Fri, 01 Jan 2100 00:00:00 GMT", "true", "false"]),
    max_size=4,
)  # fmt: skip


@MANY
@given(st.integers(100, 599), completion | json_value | st.text(max_size=60), headers)
def test_status_error_always_classifies(status, body, head):
    error = status_error(status, body, head)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert isinstance(error.message, str)
    assert len(error.message) < 5_000


@MANY
@given(headers, st.integers(0, 5))
def test_retry_after_and_delay_never_raise(head, retry):
    asked = parse_retry_after(head)
    assert asked is None or math.isfinite(asked)
    policy = RetryPolicy(random=lambda: 0.5)
    error = status_error(503, {"error": {"message": "x"}}, head)
    delay = policy.delay(retry, error, head)
    assert delay is None or 0 <= delay <= policy.max_retry_after


# --- the argument parser ------------------------------------------------------------------------


@tool
def typed_tool(name: str, count: int = 1, tags: list[str] | None = None) -> str:
    """A tool with typed parameters."""
    return name


SCHEMA_TOOL = Tool.from_schema(
    "schema_tool",
    "From a raw schema.",
    {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
     "required": ["q"]},
    lambda **kw: kw,
)  # fmt: skip

argument_text = (
    st.text(max_size=80)
    | json_value.map(json.dumps)
    | shaped({"name": text, "count": small, "tags": st.lists(text), "q": text, "n": small}).map(
        json.dumps
    )
    | json_value.map(lambda v: json.dumps(json.dumps(v)))  # encoded twice
)


@MANY
@given(argument_text | st.none())
def test_load_arguments_raises_only_argument_problems(raw):
    value, exc = outcome(load_arguments, raw)
    if exc is not None:
        assert isinstance(exc, ArgumentProblems), repr(exc)
        assert exc.lines
        assert len(str(exc)) < 3_000
    else:
        assert isinstance(value, dict)


@MANY
@given(argument_text)
def test_tool_arguments_give_values_or_an_explanation(raw):
    for made in (typed_tool, SCHEMA_TOOL):
        arguments, signal = outcome(made.parse_arguments, raw)
        if signal is not None:
            assert isinstance(signal, ToolRetry), repr(signal)
            assert signal.message.startswith(f"Invalid arguments for tool {made.name!r}")
            assert len(signal.message) < 3_000
        else:
            assert isinstance(arguments, dict)


@SOME
@given(st.integers(1, 3000))
def test_deeply_nested_arguments_are_explained_not_crashed(depth):
    raw = "[" * depth + "]" * depth
    nested = '{"name": ' + raw + "}"
    for text in (raw, nested, '{"a": ' * depth):  # none of them is acceptable
        with pytest.raises(ToolRetry):
            typed_tool.parse_arguments(text)
