"""A prompt given as a list of dicts: a conversation of OpenAI-style messages, or one user turn's
content parts. Checked through the real request building against the fake server: what reaches
the wire, and every invalid prompt refused with `UsageError` before a request is sent."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop import (
    Agent,
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageError,
    UserMessage,
    tool,
)
from agentloop._history import UNANSWERED
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,"}}
CALL = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1,"b":2}'}}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def _sent(prompt: Any, **options: Any) -> list[dict[str, Any]]:
    """The wire messages of the one request a run of `prompt` makes."""
    instructions = options.pop("instructions", None)
    with FakeServer([reply("ok")]) as server:
        agent = Agent(server.model(), instructions=instructions, tools=[add])
        result = await agent.run(prompt, **options)
    assert result.output == "ok"
    return server.requests[0]["messages"]


async def test_the_bug_report_one_user_message_dict() -> None:
    assert await _sent([{"role": "user", "content": "hi"}]) == [{"role": "user", "content": "hi"}]


def test_run_sync_takes_a_message_list() -> None:
    with FakeServer([reply("hello")]) as server:
        result = Agent(server.model()).run_sync([{"role": "user", "content": "hi"}])
    assert result.output == "hello"
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_a_whole_conversation_reaches_the_wire() -> None:
    prompt = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "3", "name": "add"},
        {"role": "user", "content": "so?"},
    ]
    sent = await _sent(prompt, instructions="Be brief.")
    assert sent == [
        {"role": "system", "content": "Be brief.\n\nAnswer in French."},
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "user", "content": "so?"},
    ]


async def test_result_messages_are_agentloop_messages() -> None:
    prompt = [
        {"role": "user", "content": "1+2?"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "3", "name": "add"},
    ]
    with FakeServer([reply("3")]) as server:
        result = await Agent(server.model(), instructions="Sum.").run(prompt)
    assert result.messages[:4] == [
        SystemMessage("Sum."),
        UserMessage("1+2?"),
        AssistantMessage(tool_calls=(ToolCall("c1", "add", '{"a":1,"b":2}'),)),
        ToolMessage("c1", "3", "add"),
    ]


async def test_developer_is_system_and_a_later_system_message_stays_in_place() -> None:
    prompt = [
        {"role": "developer", "content": "Rule one."},
        {"role": "system", "content": "Rule two."},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": "Now be formal."},
        {"role": "user", "content": "hello"},
    ]
    assert await _sent(prompt) == [
        {"role": "system", "content": "Rule one.\n\nRule two."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Now be formal."},
        {"role": "user", "content": "hello"},
    ]


async def test_leading_system_goes_first_and_replaces_a_stored_one() -> None:
    history = [SystemMessage("old rules"), UserMessage("before"), AssistantMessage("noted")]
    prompt = [{"role": "system", "content": "new rules"}, {"role": "user", "content": "after"}]
    assert await _sent(prompt, history=history) == [
        {"role": "system", "content": "new rules"},
        {"role": "user", "content": "before"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "after"},
    ]
    without_system = [{"role": "user", "content": "after"}]
    sent = await _sent(without_system, history=history)
    assert sent[0] == {"role": "system", "content": "old rules"}


async def test_prompt_answers_the_tool_calls_a_history_left_open() -> None:
    history = [
        UserMessage("1+2 and 3+4?"),
        AssistantMessage(
            tool_calls=(ToolCall("x", "add", '{"a":1,"b":2}'), ToolCall("y", "add", "{}"))
        ),
        ToolMessage("x", "3"),
    ]
    prompt = [{"role": "tool", "tool_call_id": "y", "content": "7"}]
    sent = await _sent(prompt, history=history)
    assert [(m["role"], m.get("tool_call_id"), m.get("content")) for m in sent[-2:]] == [
        ("tool", "x", "3"),
        ("tool", "y", "7"),
    ]


async def test_unanswered_calls_in_the_prompt_are_repaired_like_a_history() -> None:
    two = [CALL, {"id": "c2", "function": {"name": "add"}}]  # "type" may be left out
    prompt = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "working", "tool_calls": two},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "user", "content": "well?"},
    ]
    sent = await _sent(prompt)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user"]
    assert sent[1]["tool_calls"][1]["function"] == {"name": "add", "arguments": "{}"}
    assert sent[3] == {"role": "tool", "tool_call_id": "c2", "content": UNANSWERED}


async def test_a_list_may_end_with_an_assistant_message() -> None:
    prompt = [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "Autumn moonlight"},
    ]
    sent = await _sent(prompt)
    assert sent[-1] == {"role": "assistant", "content": "Autumn moonlight"}


async def test_assistant_fields_arguments_as_dict_refusal_and_reasoning() -> None:
    prompt = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "function_call": None,  # what an SDK's model_dump() leaves: None keys are ignored
            "audio": None,
            "annotations": [],
            "reasoning_content": "thinking...",
            "tool_calls": [
                {"id": "d", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}},
                {"id": "e", "type": "function", "function": {"name": "add", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "d", "content": "1"},
        {"role": "tool", "tool_call_id": "e", "content": "0"},
        {"role": "assistant", "content": None, "refusal": "I can't."},
        {"role": "user", "content": "ok"},
    ]
    sent = await _sent(prompt)
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "thinking...",
        "tool_calls": [
            {"id": "d", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
            {"id": "e", "type": "function", "function": {"name": "add", "arguments": "{}"}},
        ],
    }
    assert sent[4] == {"role": "assistant", "content": None, "refusal": "I can't."}


async def test_content_parts_are_one_user_message() -> None:
    text = {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}}
    sent = await _sent([text, IMAGE, AUDIO, FILE], instructions="Look.")
    assert sent == [
        {"role": "system", "content": "Look."},
        {"role": "user", "content": [text, IMAGE, AUDIO, FILE]},
    ]


async def test_content_parts_inside_a_user_message() -> None:
    parts = [{"type": "text", "text": "and this?"}, IMAGE]
    prompt = [{"role": "user", "content": "hi"}, {"role": "user", "content": parts}]
    sent = await _sent(prompt)
    assert sent[1] == {"role": "user", "content": parts}


async def test_text_parts_of_system_assistant_and_tool_are_joined() -> None:
    lines = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    prompt = [
        {"role": "system", "content": lines},
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": lines, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": lines},
    ]
    sent = await _sent(prompt)
    assert [m["content"] for m in sent] == ["one\ntwo", "go", "one\ntwo", "one\ntwo"]


async def test_a_streamed_run_takes_a_message_list() -> None:
    with FakeServer([reply("streamed")]) as server:
        agent = Agent(server.model())
        async with agent.run_stream([{"role": "user", "content": "hi"}]) as stream:
            async for _ in stream:
                pass
    assert stream.result.output == "streamed"
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


def _assistant_calling(**function: Any) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "add", **function}}
    return {"role": "assistant", "tool_calls": [call]}


USER = {"role": "user", "content": "hi"}
INVALID: dict[str, tuple[Any, str]] = {
    "empty_list": ([], "empty list"),
    "a_bare_dict": ({"role": "user", "content": "hi"}, "not a dict"),
    "not_a_dict": ([USER, "hello"], r"prompt\[1\] is a str, not a dict"),
    "an_agentloop_message": ([UserMessage("hi")], r"prompt\[0\] is a UserMessage.*history="),
    "neither_role_nor_type": ([USER, {"content": "x"}], r"prompt\[1\] has neither 'role'"),
    "messages_then_parts": ([USER, {"type": "text", "text": "x"}], r"prompt\[1\].*not both"),
    "parts_then_messages": ([{"type": "text", "text": "x"}, USER], r"prompt\[1\].*not both"),
    "unknown_role": ([USER, {"role": "function", "content": "x"}], r"prompt\[1\]: unknown role"),
    "role_not_a_str": ([{"role": None, "content": "x"}], r"prompt\[0\]: unknown role None"),
    "unknown_part_type": ([{"type": "video", "video": {}}], r"prompt\[0\]: unknown part type"),
    "part_without_type": ([{"role": "user", "content": [{"text": "x"}]}], r"content\[0\]: unknown"),
    "text_part_without_text": ([{"type": "text"}], r"prompt\[0\]: the 'text' part needs"),
    "image_url_as_a_str": ([{"type": "image_url", "image_url": "u"}], r"'image_url' part needs"),
    "audio_without_format": (
        [{"type": "input_audio", "input_audio": {"data": "x"}}],
        r"prompt\[0\]: the 'input_audio' part needs",
    ),
    "file_without_data": ([{"type": "file", "file": {}}], r"prompt\[0\]: the 'file' part needs"),
    "file_missing": ([IMAGE, {"type": "file"}], r"prompt\[1\]: the 'file' part needs"),
    "bad_part_in_a_user_message": (
        [USER, {"role": "user", "content": [IMAGE, {"type": "image_url"}]}],
        r"prompt\[1\]\.content\[1\]: the 'image_url' part needs",
    ),
    "empty_parts_in_a_user_message": ([{"role": "user", "content": []}], r"prompt\[0\].*empty"),
    "user_content_missing": ([{"role": "user"}], r"prompt\[0\]: 'content' .*null"),
    "user_content_a_number": ([{"role": "user", "content": 3}], r"prompt\[0\]: .*not int"),
    "system_content_an_image": (
        [{"role": "system", "content": [IMAGE]}, USER],
        r"prompt\[0\]\.content\[0\]: only a user message takes non-text parts",
    ),
    "assistant_without_anything": ([USER, {"role": "assistant"}], r"prompt\[1\].*needs content"),
    "assistant_content_a_dict": (
        [USER, {"role": "assistant", "content": {"text": "x"}}],
        r"prompt\[1\]: 'content' is a str",
    ),
    "refusal_not_a_str": ([USER, {"role": "assistant", "refusal": 1}], r"'refusal' is a non-emp"),
    "tool_calls_not_a_list": (
        [USER, {"role": "assistant", "tool_calls": CALL}],
        r"prompt\[1\]: 'tool_calls' is a list",
    ),
    "tool_call_not_a_function": (
        [USER, {"role": "assistant", "tool_calls": [{**CALL, "type": "custom"}]}],
        r"prompt\[1\]\.tool_calls\[0\]: a tool call is",
    ),
    "tool_call_without_id": (
        [USER, {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]}],
        r"prompt\[1\]\.tool_calls\[0\]: 'id'",
    ),
    "tool_call_without_name": (
        [USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}],
        r"prompt\[1\]\.tool_calls\[0\]\.function: 'name'",
    ),
    "arguments_a_number": (
        [USER, _assistant_calling(arguments=3)],
        r"prompt\[1\]\.tool_calls\[0\]\.function\.arguments must be a JSON object",
    ),
    "arguments_not_json": (
        [USER, _assistant_calling(arguments="{a: 1")],
        r"prompt\[1\]\.tool_calls\[0\]\.function\.arguments is not JSON",
    ),
    "arguments_a_json_list": (
        [USER, _assistant_calling(arguments="[1, 2]")],
        r"arguments must be a JSON object",
    ),
    "arguments_a_dict_of_objects": (
        [USER, _assistant_calling(arguments={"when": object()})],
        r"arguments is not JSON",
    ),
    "tool_without_tool_call_id": (
        [USER, _assistant_calling(), {"role": "tool", "content": "3"}],
        r"prompt\[2\]: 'tool_call_id' is a non-empty str, not null",
    ),
    "tool_content_missing": (
        [USER, _assistant_calling(), {"role": "tool", "tool_call_id": "c1"}],
        r"prompt\[2\]: 'content'",
    ),
    "tool_answering_no_call": (
        [USER, {"role": "tool", "tool_call_id": "c1", "content": "3"}],
        r"prompt\[1\]: tool_call_id 'c1' answers no open tool call",
    ),
    "tool_after_a_user_turn": (
        [USER, _assistant_calling(), USER, {"role": "tool", "tool_call_id": "c1", "content": "3"}],
        r"prompt\[3\]: tool_call_id 'c1'",
    ),
    "tool_answering_twice": (
        [USER, _assistant_calling(), *[{"role": "tool", "tool_call_id": "c1", "content": "3"}] * 2],
        r"prompt\[3\]: tool_call_id 'c1'",
    ),
    "a_key_that_cannot_be_sent": (
        [{"role": "user", "content": "hi", "name": "bob"}],
        r"prompt\[0\]: agentloop cannot send 'name' in a user message",
    ),
    "legacy_function_call": (
        [USER, {"role": "assistant", "function_call": {"name": "add", "arguments": "{}"}}],
        r"prompt\[1\]: agentloop cannot send 'function_call'",
    ),
    "only_system_messages": ([{"role": "system", "content": "x"}], r"only system messages"),
}


@pytest.mark.parametrize(("prompt", "match"), INVALID.values(), ids=INVALID.keys())
async def test_invalid_prompt_is_refused_before_any_request(prompt: Any, match: str) -> None:
    called: list[object] = []

    def instructions(ctx: Any) -> str:
        called.append(ctx)
        return "Be brief."

    with FakeServer([]) as server:
        agent = Agent(server.model(), instructions=instructions)
        with pytest.raises(UsageError, match=match):
            await agent.run(prompt)
    assert server.requests == []
    assert called == []  # checked before the agent's instructions are even computed


async def test_a_tool_message_must_answer_the_call_a_history_left_open() -> None:
    history = [UserMessage("go"), AssistantMessage(tool_calls=(ToolCall("x", "add", "{}"),))]
    with FakeServer([]) as server:
        with pytest.raises(UsageError, match=r"prompt\[0\]: tool_call_id 'nope'"):
            await Agent(server.model()).run(
                [{"role": "tool", "tool_call_id": "nope", "content": "1"}], history=history
            )
    assert server.requests == []


def test_run_sync_refuses_an_invalid_prompt_before_sending() -> None:
    with FakeServer([]) as server:
        with pytest.raises(UsageError, match=r"prompt\[0\]: unknown part type 'input_text'"):
            Agent(server.model()).run_sync([{"type": "input_text", "text": "hi"}])
    assert server.requests == []
