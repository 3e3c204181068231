"""The stream accumulator: every streaming quirk of WIRE.md as a scripted chunk sequence, fuzzed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import fuzzing
from support.unreported import UNKNOWN, silent

from agentloop import LLAMA_CPP_PROFILE, Agent, ModelResponse, RequestUsage, TurnFinished
from agentloop._errors import (
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
)
from agentloop._events import (
    ReasoningDelta,
    RefusalDelta,
    StreamDelta,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStarted,
)
from agentloop._messages import ToolCall
from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.sse import SSEEvent
from agentloop.testing import FakeServer, reply


def accumulate(events: list[SSEEvent]) -> None:
    def feed_all() -> Any:
        accumulator = StreamAccumulator()
        for event in events:
            accumulator.feed_event(event)
        return accumulator.response()

    response, exc = fuzzing.outcome(feed_all)
    if exc is not None:
        assert fuzzing.typed(exc), repr(exc)
    else:
        ids = [call.id for call in response.message.tool_calls]
        assert all(ids)
        assert len(set(ids)) == len(ids)


event_data = (
    fuzzing.chunk.map(json.dumps) | fuzzing.json_value.map(json.dumps) | st.text(max_size=30)
)


sse_event = st.builds(
    SSEEvent, event_data, st.sampled_from(["message", "error", "ping"]),
)  # fmt: skip


@fuzzing.MANY
@given(st.lists(sse_event, max_size=6))
def test_stream_accumulator_raises_only_typed_errors(events):
    accumulate(events)


@fuzzing.MANY
@given(st.lists(fuzzing.chunk, max_size=6), st.booleans())
def test_stream_accumulator_on_chunk_shapes(chunks, done):
    events = [SSEEvent(json.dumps(c)) for c in chunks]
    accumulate([*events, SSEEvent("[DONE]")] if done else events)


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, **top: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "resp-1", "model": "m-1", "object": "chat.completion.chunk"}
    body["choices"] = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    body.update(top)
    return body


def call(index: int | None = None, id: str | None = None, name: str | None = None, args: Any = ...):
    entry: dict[str, Any] = {} if index is None else {"index": index}
    function: dict[str, Any] = {}
    if id is not None:
        entry["id"], entry["type"] = id, "function"
    if name is not None:
        function["name"] = name
    if args is not ...:
        function["arguments"] = args
    entry["function"] = function
    return entry


def tools(*calls: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return chunk({"role": "assistant", "tool_calls": list(calls)}, finish)


def run(*chunks: dict[str, Any], done: bool = True) -> tuple[ModelResponse, list[StreamDelta]]:
    acc = StreamAccumulator()
    deltas: list[StreamDelta] = []
    for c in chunks:
        deltas += acc.feed_event(SSEEvent(json.dumps(c)))
    if done:
        assert acc.feed_event(SSEEvent("[DONE]")) == []
        assert acc.done
    return acc.response(), deltas


def test_text_fragments_join_and_stream_as_text_deltas() -> None:
    result, deltas = run(
        chunk({"role": "assistant", "content": ""}),
        chunk({"role": "assistant", "content": "Hel"}),
        chunk({"role": "assistant", "content": "lo"}),
        chunk({}, "stop"),
    )
    assert deltas == [TextDelta("Hel"), TextDelta("lo")]
    assert result.message.content == "Hello"
    assert (result.finish_reason, result.raw_finish_reason) == ("stop", "stop")
    assert (result.id, result.model) == ("resp-1", "m-1")
    assert result.extra["object"] == "chat.completion.chunk"


def test_id_type_and_name_repeated_in_later_deltas_are_set_once() -> None:
    result, deltas = run(
        tools(call(0, "c1", "get_weather", "")),
        tools(call(0, "c1", "get_weather", '{"ci')),
        tools(call(0, "c1", "get_weather", 'ty": "Paris"}')),
        chunk({}, "tool_calls"),
    )
    assert result.message.tool_calls == (ToolCall("c1", "get_weather", '{"city": "Paris"}'),)
    assert deltas == [
        ToolCallStarted(0, "c1", "get_weather"),
        ToolArgumentsDelta(0, "c1", '{"ci'),
        ToolArgumentsDelta(0, "c1", 'ty": "Paris"}'),
    ]
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize("first_args", [..., None, ""])
def test_first_delta_without_arguments_and_calls_that_never_get_any(first_args: Any) -> None:
    result, _ = run(
        tools(call(0, "a", "now", first_args)),
        tools(call(1, "b", "later", first_args), call(1, args='{"x": 1}')),
        chunk({}, "tool_calls"),
    )
    assert [(c.name, c.arguments) for c in result.message.tool_calls] == [
        ("now", "{}"),
        ("later", '{"x": 1}'),
    ]


def test_whole_calls_in_one_delta_without_index() -> None:
    result, deltas = run(
        tools(call(None, "a", "one", '{"n": 1}'), call(None, "b", "two", '{"n": 2}')),
        chunk({}, "tool_calls"),
    )
    assert [(c.id, c.name, c.arguments) for c in result.message.tool_calls] == [
        ("a", "one", '{"n": 1}'),
        ("b", "two", '{"n": 2}'),
    ]
    assert [d.index for d in deltas if isinstance(d, ToolCallStarted)] == [0, 1]


def test_calls_without_index_continue_by_id_or_by_fragment() -> None:
    result, _ = run(
        tools(call(None, "a", "one", '{"n":')),
        tools(call(None, "a", "one", " 1}")),
        tools(call(None, args="")),
        tools(call(None, "b", "two", "{}")),
        chunk({}, "tool_calls"),
    )
    assert [(c.id, c.arguments) for c in result.message.tool_calls] == [
        ("a", '{"n": 1}'),
        ("b", "{}"),
    ]


def test_first_call_numbered_one_is_position_zero() -> None:
    result, deltas = run(
        tools(call(1, "a", "one", "")),
        tools(call(1, args="{}")),
        tools(call(2, "b", "two", '{"k"')),
        tools(call(2, args=": 2}")),
        chunk({}, "tool_calls"),
    )
    assert [(c.name, c.arguments) for c in result.message.tool_calls] == [
        ("one", "{}"),
        ("two", '{"k": 2}'),
    ]
    assert [d for d in deltas if isinstance(d, ToolCallStarted)] == [
        ToolCallStarted(0, "a", "one"),
        ToolCallStarted(1, "b", "two"),
    ]


def test_parallel_calls_all_at_index_zero_with_distinct_ids() -> None:
    result, deltas = run(
        tools(call(0, "a", "one", '{"q":')),
        tools(call(0, args=' "x"}')),
        tools(call(0, "b", "one", '{"q":')),
        tools(call(0, args=' "y"}')),
        chunk({}, "tool_calls"),
    )
    assert result.message.tool_calls == (
        ToolCall("a", "one", '{"q": "x"}'),
        ToolCall("b", "one", '{"q": "y"}'),
    )
    assert ToolArgumentsDelta(1, "b", ' "y"}') in deltas


def test_calls_without_ids_get_deterministic_distinct_ids() -> None:
    script = (
        tools(call(0, name="one", args="{}"), call(1, id="", name="two", args="{}")),
        chunk({}, "tool_calls"),
    )
    first, deltas = run(*script)
    again, _ = run(*script)
    ids = [c.id for c in first.message.tool_calls]
    assert ids == [c.id for c in again.message.tool_calls]
    assert len(set(ids)) == 2
    assert all(i.startswith("call_") for i in ids)
    assert [d.id for d in deltas if isinstance(d, ToolCallStarted)] == ids


def test_duplicate_ids_are_made_unique() -> None:
    result, deltas = run(
        tools(call(0, "dup", "one", "{}")),
        tools(call(1, "dup", "two", "{}")),
        chunk({}, "tool_calls"),
    )
    assert [c.id for c in result.message.tool_calls] == ["dup", "dup_2"]
    assert [d.id for d in deltas if isinstance(d, ToolCallStarted)] == ["dup", "dup_2"]


def test_arguments_before_the_name_follow_the_start() -> None:
    _, deltas = run(
        tools(call(0, args='{"a"')), tools(call(0, "x", "f", ": 1}")), chunk({}, "stop")
    )
    assert deltas == [ToolCallStarted(0, "x", "f"), ToolArgumentsDelta(0, "x", '{"a": 1}')]


def test_content_beside_tool_calls_is_kept() -> None:
    result, deltas = run(
        chunk({"role": "assistant", "content": "Let me check."}),
        tools(call(0, "a", "look", "{}")),
        chunk({}, "tool_calls"),
    )
    assert result.message.content == "Let me check."
    assert len(result.message.tool_calls) == 1
    assert deltas[0] == TextDelta("Let me check.")


def test_empty_content_with_tool_calls_is_none() -> None:
    result, _ = run(chunk({"content": ""}), tools(call(0, "a", "f", "{}")), chunk({}, "tool_calls"))
    assert result.message.content is None


def test_content_as_a_list_of_parts_with_thinking() -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Hmm"}]}
    result, deltas = run(
        chunk({"content": [thinking]}),
        chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": ", ok"}]}]}),
        chunk({"content": [{"type": "text", "text": "Yes"}]}),
        chunk({"content": "!"}, "stop"),
    )
    assert deltas == [
        ReasoningDelta("Hmm"),
        ReasoningDelta(", ok"),
        TextDelta("Yes"),
        TextDelta("!"),
    ]
    assert result.message.content == "Yes!"
    assert result.message.reasoning == {"thinking": "Hmm, ok"}


USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "cost": 0.00025,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


EXPECTED_USAGE = RequestUsage(12, 5, 3, 2, 0.00025)


@pytest.mark.parametrize(
    "last",
    [
        {"id": "resp-1", "choices": [], "usage": USAGE},
        chunk({"role": "assistant", "content": ""}, None, usage=USAGE),
        chunk({"role": "assistant", "content": ""}, "stop", usage=USAGE),
    ],
    ids=["empty-choices", "empty-delta", "repeats-stop"],
)
def test_openrouter_usage_chunk_in_three_shapes(last: dict[str, Any]) -> None:
    result, deltas = run(
        chunk({"content": "Hi"}, usage=None), chunk({"content": ""}, "stop", usage=None), last
    )
    assert result.usage == EXPECTED_USAGE
    assert result.message.content == "Hi"
    assert result.finish_reason == "stop"
    assert deltas == [TextDelta("Hi")]


def test_groq_usage_in_x_groq() -> None:
    groq = {"id": "req_1", "usage": {"prompt_tokens": 21, "completion_tokens": 9}}
    result, _ = run(chunk({"content": "a"}), chunk({}, "stop", x_groq=groq))
    assert result.usage == RequestUsage(21, 9)


def test_missing_usage_is_zero_and_unreported() -> None:
    result, _ = run(chunk({"content": "a"}, "stop"))
    assert result.usage == RequestUsage(reported=False)


def test_azure_first_chunk_with_empty_choices_id_and_model() -> None:
    first = {"id": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}
    result, _ = run(first, chunk({"content": "ok"}, "stop"))
    assert (result.id, result.model, result.message.content) == ("resp-1", "m-1", "ok")
    assert result.extra["prompt_filter_results"] == [{"prompt_index": 0}]


def test_interleaved_choices_keep_choice_zero_only() -> None:
    result, deltas = run(
        chunk({"content": "B1"}, index=1),
        chunk({"content": "A1"}, index=0),
        chunk({"content": "B2"}, "stop", index=1),
        chunk({"content": "A2"}, index=0),
        chunk({}, "length", index=0),
    )
    assert result.message.content == "A1A2"
    assert deltas == [TextDelta("A1"), TextDelta("A2")]
    assert result.finish_reason == "length"


def test_refusal_fragments() -> None:
    result, deltas = run(
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        chunk({"refusal": "I can't"}),
        chunk({"refusal": " help."}),
        chunk({}, "stop"),
    )
    assert deltas == [RefusalDelta("I can't"), RefusalDelta(" help.")]
    assert result.message.refusal == "I can't help."
    assert result.message.content is None


def test_reasoning_fields_and_merged_reasoning_details() -> None:
    detail = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}
    result, deltas = run(
        chunk({"reasoning": None, "reasoning_details": [{**detail, "text": "", "signature": ""}]}),
        chunk({"reasoning": "Two", "reasoning_details": [{**detail, "text": "Two"}]}),
        chunk({"reasoning": " plus", "reasoning_details": [{**detail, "text": " plus"}]}),
        chunk({"reasoning_details": [{**detail, "signature": "SIG"}]}),
        chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "E", "index": 1}]}),
        chunk({"reasoning_content": "rc"}),
        chunk({"content": "4"}, "stop"),
    )
    assert deltas == [
        ReasoningDelta("Two"),
        ReasoningDelta(" plus"),
        ReasoningDelta("rc"),
        TextDelta("4"),
    ]
    assert result.message.reasoning == {
        "reasoning": "Two plus",
        "reasoning_content": "rc",
        "reasoning_details": [
            {**detail, "text": "Two plus", "signature": "SIG"},
            {"type": "reasoning.encrypted", "data": "E", "index": 1},
        ],
    }


def test_think_tags_in_streamed_content_become_reasoning() -> None:
    fragments = ["", "<th", "ink>", "\nPonder", "ing...</thi", "nk>", "\n\n", "The ", "answer"]
    result, deltas = run(*(chunk({"content": f}) for f in fragments), chunk({}, "stop"))
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    assert reasoning == "\nPondering..."
    assert text == "The answer"
    assert result.message.content == "The answer"
    assert result.message.reasoning == {"think": "Pondering..."}


def test_think_tag_not_at_the_start_is_text() -> None:
    result, deltas = run(chunk({"content": "<b>x</b> <think>no"}), chunk({}, "stop"))
    assert deltas == [TextDelta("<b>x</b> <think>no")]
    assert result.message.reasoning == {}


def test_unknown_keys_everywhere_are_ignored() -> None:
    result, _ = run(
        chunk({"content": "a", "annotations": [], "channel": "final"}, obfuscation="xyz"),
        {**chunk({}, "stop"), "system_fingerprint": "fp"},
    )
    assert result.message.content == "a"
    assert result.extra["obfuscation"] == "xyz"
    assert result.extra["system_fingerprint"] == "fp"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("eos", "stop"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("mystery", None),
    ],
)
def test_finish_reasons_are_normalized_and_the_raw_one_kept(
    raw: str, normalized: str | None
) -> None:
    result, _ = run(chunk({"content": "a"}, raw))
    assert (result.finish_reason, result.raw_finish_reason) == (normalized, raw)


def test_legacy_function_call_delta() -> None:
    result, _ = run(
        chunk({"function_call": {"name": "f", "arguments": '{"a"'}}),
        chunk({"function_call": {"arguments": ": 1}"}}),
        chunk({}, "function_call"),
    )
    assert [(c.name, c.arguments) for c in result.message.tool_calls] == [("f", '{"a": 1}')]
    assert result.finish_reason == "tool_calls"


def test_groq_error_event_raises_the_typed_error() -> None:
    acc = StreamAccumulator()
    acc.feed_event(SSEEvent(json.dumps(chunk({"reasoning": "We"}))))
    error = {
        "error": {
            "message": "Tool call validation failed",
            "code": "tool_use_failed",
            "status_code": 400,
        }
    }
    with pytest.raises(BadRequestError, match="Tool call validation failed"):
        acc.feed_event(SSEEvent(json.dumps(error), event="error"))


def test_error_event_with_text_data_is_a_server_error() -> None:
    with pytest.raises(InternalServerError, match="upstream went away"):
        StreamAccumulator().feed_event(SSEEvent("upstream went away", event="error"))


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        ({"code": 429, "message": "slow down"}, RateLimitError, 429),
        ({"code": "400", "message": "bad"}, BadRequestError, 400),
        ({"code": "server_overloaded", "message": "busy"}, InternalServerError, 500),
        ("plain text error", InternalServerError, 500),
    ],
)
def test_chunk_with_top_level_error(error: Any, cls: type[Exception], status: int) -> None:
    acc = StreamAccumulator()
    acc.feed_chunk(chunk({"content": "a"}))
    with pytest.raises(cls) as caught:
        acc.feed_chunk(chunk({}, error=error))
    assert caught.value.status_code == status  # type: ignore[attr-defined]


def test_finish_reason_error_raises() -> None:
    with pytest.raises(InternalServerError, match="finish_reason 'error'"):
        run(chunk({"content": "a"}), chunk({}, "error"))


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"'])
def test_data_that_is_not_a_json_object_is_a_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError, match=r"not JSON|not a JSON object"):
        StreamAccumulator().feed_event(SSEEvent(data))


@pytest.mark.parametrize(
    "bad",
    [
        {"choices": "nope"},
        {"choices": ["nope"]},
        {"choices": [{"index": 0, "delta": "nope"}]},
        chunk({"content": 5}),
        chunk({"tool_calls": "nope"}),
        chunk({"tool_calls": ["nope"]}),
        chunk({"tool_calls": [{"index": 0, "function": "nope"}]}),
    ],
)
def test_malformed_chunks_are_protocol_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        StreamAccumulator().feed_chunk(bad)


def test_stream_without_finish_or_done_is_incomplete_and_keeps_the_partial() -> None:
    acc = StreamAccumulator()
    acc.feed_chunk(chunk({"content": "half an ans"}))
    acc.feed_chunk(tools(call(0, "a", "f", '{"x"')))
    acc.feed_chunk(tools(call(1, args="orphan")))  # a call that never got a name
    with pytest.raises(IncompleteStreamError) as caught:
        acc.response()
    partial = caught.value.partial
    assert isinstance(partial, ModelResponse)
    assert partial.message.content == "half an ans"
    assert partial.message.tool_calls == (ToolCall("a", "f", '{"x"'),)


def test_empty_stream_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError):
        StreamAccumulator().response()


def test_finish_without_done_and_done_without_finish_are_complete() -> None:
    assert run(chunk({"content": "a"}, "stop"), done=False)[0].message.content == "a"
    result, _ = run(chunk({"content": "b"}), done=True)
    assert (result.message.content, result.finish_reason) == ("b", None)


def test_a_finished_call_without_a_name_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="no function name"):
        run(tools(call(0, "a", args="{}")), chunk({}, "tool_calls"))


def test_events_after_done_are_ignored() -> None:
    acc = StreamAccumulator()
    acc.feed_event(SSEEvent(json.dumps(chunk({"content": "a"}, "stop"))))
    acc.feed_event(SSEEvent(" [DONE] "))
    assert acc.feed_event(SSEEvent(json.dumps(chunk({"content": "late"})))) == []
    assert acc.response().message.content == "a"


def test_many_small_fragments_are_joined_once() -> None:
    acc = StreamAccumulator()
    acc.feed_chunk(tools(call(0, "a", "f", "")))
    for _ in range(20_000):
        acc.feed_chunk(chunk({"content": "x"}))
        acc.feed_chunk(tools(call(0, args="y")))
    acc.feed_chunk(chunk({}, "stop"))
    result = acc.response()
    assert result.message.content == "x" * 20_000
    assert result.message.tool_calls[0].arguments == "y" * 20_000


@pytest.mark.anyio
async def test_a_stream_without_a_usage_chunk_is_unreported() -> None:
    # llama-cpp-python's profile does not ask for stream usage; the server sends none anyway
    with FakeServer([silent("hi there")], model_name="my-local") as server:
        agent = Agent(server.model(LLAMA_CPP_PROFILE))
        async with agent.run_stream("hello") as stream:
            turns = [e async for e in stream if isinstance(e, TurnFinished)]
    assert "stream_options" not in server.requests[0]
    assert [t.response.usage for t in turns] == [RequestUsage(reported=False)]
    assert [t.stats.usage_reported for t in turns] == [False]
    assert stream.result.usage.unreported_requests == 1
    assert stream.result.usage.describe_tokens() == UNKNOWN


@pytest.mark.anyio
async def test_a_stream_with_a_usage_chunk_is_reported() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    with FakeServer([reply("hi there", usage=usage)]) as server:
        async with Agent(server.model()).run_stream("hello") as stream:
            turns = [e async for e in stream if isinstance(e, TurnFinished)]
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert turns[0].response.usage == RequestUsage(12, 3)
    assert turns[0].response.usage.reported
    assert stream.result.usage.fully_reported
    assert stream.result.usage.describe_tokens() == "12/3 tokens in/out"
