"""Every tool-call quirk real servers send, through whole agent runs on the fault server.

For each quirk the tools must run with the intended arguments, every call id in the history must
be unique and answered by exactly one tool message, and the next request must carry that history
(a server answers 400 otherwise).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentloop import Agent, tool
from reliability.helpers import calls_of, make_model

from faultserver import Plan, chunks_of, completion, ok, sse_bytes, stream  # isort: skip

pytestmark = pytest.mark.anyio
CALLS: list[tuple[str, Any]] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(("add", (a, b)))
    return a + b


@tool
def ping(note: str = "none") -> str:
    """Answer pong."""
    CALLS.append(("ping", note))
    return "pong"


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {
        "id": "chatcmpl-q",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [choice],
    }


def _calls(*deltas: dict[str, Any]) -> dict[str, Any]:
    return _chunk({"tool_calls": list(deltas)})


def _fn(name: str | None = None, arguments: Any = ..., **extra: Any) -> dict[str, Any]:
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if arguments is not ...:
        fn["arguments"] = arguments
    return {"function": fn, **extra}


ADD_23 = '{"a": 2, "b": 3}'
END = [_chunk(finish="tool_calls")]

# name -> (chunks of the streamed turn, the calls expected to run)
STREAMED: dict[str, tuple[list[dict[str, Any]], list[tuple[str, Any]]]] = {
    "id-type-name-repeated": (
        [_calls({"index": 0, "id": "c1", "type": "function", **_fn("add", "")}),
         _calls({"index": 0, "id": "c1", "type": "function", **_fn("add", '{"a": 2,')}),
         _calls({"index": 0, "id": "c1", "type": "function", **_fn("add", ' "b": 3}')}),
         *END],
        [("add", (2, 3))],
    ),
    "first-delta-without-arguments": (
        [_calls({"index": 0, "id": "c1", "type": "function", **_fn("add")}),
         _calls({"index": 0, **_fn(arguments=ADD_23)}), *END],
        [("add", (2, 3))],
    ),
    "first-delta-arguments-null": (
        [_calls({"index": 0, "id": "c1", **_fn("add", None)}),
         _calls({"index": 0, **_fn(arguments=ADD_23)}), *END],
        [("add", (2, 3))],
    ),
    "whole-calls-without-index": (
        [_calls({"id": "c1", **_fn("add", ADD_23)}),
         _calls({"id": "c2", **_fn("add", '{"a": 4, "b": 5}')}), *END],
        [("add", (2, 3)), ("add", (4, 5))],
    ),
    "first-call-at-index-1": (
        [_calls({"index": 1, "id": "c1", **_fn("add", "")}),
         _calls({"index": 1, **_fn(arguments=ADD_23)}), *END],
        [("add", (2, 3))],
    ),
    "parallel-calls-all-at-index-0": (
        [_calls({"index": 0, "id": "c1", **_fn("add", ADD_23)}),
         _calls({"index": 0, "id": "c2", **_fn("ping", '{"note": "x"}')}), *END],
        [("add", (2, 3)), ("ping", "x")],
    ),
    "parallel-calls-under-new-indexes": (
        [_calls({"index": 0, "id": "c1", **_fn("add", "")}),
         _calls({"index": 0, **_fn(arguments='{"a": 2, ')}),
         _calls({"index": 0, **_fn(arguments='"b": 3}')}),
         _calls({"index": 1, "id": "c2", **_fn("ping", "")}), *END],
        [("add", (2, 3)), ("ping", "none")],
    ),
    "calls-without-id": (
        [_calls({"index": 0, **_fn("add", ADD_23)}),
         _calls({"index": 1, **_fn("ping", "")}), *END],
        [("add", (2, 3)), ("ping", "none")],
    ),
    "duplicate-ids": (
        [_calls({"index": 0, "id": "dup", **_fn("add", ADD_23)}),
         _calls({"index": 1, "id": "dup", **_fn("ping", "{}")}), *END],
        [("add", (2, 3)), ("ping", "none")],
    ),
    "empty-ids": (
        [_calls({"index": 0, "id": "", **_fn("add", ADD_23)}),
         _calls({"index": 1, "id": "", **_fn("ping", "{}")}), *END],
        [("add", (2, 3)), ("ping", "none")],
    ),
    "arguments-as-object": (
        [_calls({"index": 0, "id": "c1", **_fn("add", {"a": 2, "b": 3})}), *END],
        [("add", (2, 3))],
    ),
    "arguments-missing-empty-null": (
        [_calls({"index": 0, "id": "c1", **_fn("ping")}),
         _calls({"index": 1, "id": "c2", **_fn("ping", "")}),
         _calls({"index": 2, "id": "c3", **_fn("ping", None)}), *END],
        [("ping", "none")] * 3,
    ),
    "text-beside-calls": (
        [_chunk({"role": "assistant", "content": "Let me add."}),
         _calls({"index": 0, "id": "c1", **_fn("add", ADD_23)}), *END],
        [("add", (2, 3))],
    ),
    "finish-stop-with-calls": (
        [_calls({"index": 0, "id": "c1", **_fn("add", ADD_23)}), _chunk(finish="stop")],
        [("add", (2, 3))],
    ),
    "no-finish-reason-only-done": (
        [_calls({"index": 0, "id": "c1", **_fn("add", ADD_23)})],
        [("add", (2, 3))],
    ),
    "legacy-function-call": (
        [_chunk({"function_call": {"name": "add", "arguments": ""}}),
         _chunk({"function_call": {"arguments": ADD_23}}), _chunk(finish="function_call")],
        [("add", (2, 3))],
    ),
    "role-repeated-and-refusal-empty": (
        [_chunk({"role": "assistant", "refusal": "", "tool_calls": [
            {"index": 0, "id": "c1", **_fn("add", "")}]}),
         _chunk({"role": "assistant", "refusal": "", "tool_calls": [
             {"index": 0, **_fn(arguments=ADD_23)}]}), *END],
        [("add", (2, 3))],
    ),
}  # fmt: skip


def _call(name: str, arguments: Any, call_id: Any = "c1") -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name}}
    if arguments is not ...:
        call["function"]["arguments"] = arguments
    if call_id is not ...:
        call["id"] = call_id
    return call


def _body(message: dict[str, Any], finish: str | None = "tool_calls") -> Plan:
    body = completion("x")
    body["choices"][0] = {"index": 0, "message": {"role": "assistant", **message},
                          "finish_reason": finish}  # fmt: skip
    return Plan(200, {"Content-Type": "application/json"}, [json.dumps(body).encode()])


WHOLE: dict[str, tuple[Plan, list[tuple[str, Any]]]] = {
    "content-null": (_body({"content": None, "tool_calls": [_call("add", ADD_23)]}),
                     [("add", (2, 3))]),
    "content-empty": (_body({"content": "", "tool_calls": [_call("add", ADD_23)]}),
                      [("add", (2, 3))]),
    "text-beside-calls": (_body({"content": "Adding.", "tool_calls": [_call("add", ADD_23)]}),
                          [("add", (2, 3))]),
    "no-id": (_body({"tool_calls": [_call("add", ADD_23, ...), _call("ping", "{}", ...)]}),
              [("add", (2, 3)), ("ping", "none")]),
    "duplicate-ids": (_body({"tool_calls": [_call("add", ADD_23, "d"), _call("ping", "{}", "d")]}),
                      [("add", (2, 3)), ("ping", "none")]),
    "empty-and-null-ids": (
        _body({"tool_calls": [_call("add", ADD_23, ""), _call("ping", "{}", None)]}),
        [("add", (2, 3)), ("ping", "none")]),
    "arguments-missing-empty-null": (
        _body({"tool_calls": [_call("ping", ..., "a"), _call("ping", "", "b"),
                              _call("ping", None, "c")]}),
        [("ping", "none")] * 3),
    "arguments-as-object": (_body({"tool_calls": [_call("add", {"a": 2, "b": 3})]}),
                            [("add", (2, 3))]),
    "arguments-encoded-twice": (_body({"tool_calls": [_call("add", json.dumps(ADD_23))]}),
                                [("add", (2, 3))]),
    "finish-stop": (_body({"tool_calls": [_call("add", ADD_23)]}, "stop"), [("add", (2, 3))]),
    "finish-missing": (_body({"tool_calls": [_call("add", ADD_23)]}, None), [("add", (2, 3))]),
    "legacy-function-call": (_body({"function_call": {"name": "add", "arguments": ADD_23}}),
                             [("add", (2, 3))]),
    "refusal-empty-string": (_body({"refusal": "", "tool_calls": [_call("add", ADD_23)]}),
                             [("add", (2, 3))]),
}  # fmt: skip


async def _run_and_check(server, first: Plan, final: Plan, expected, *, streaming: bool):
    CALLS.clear()
    server.script(first, final)
    model = make_model(server)
    agent = Agent(model, tools=[add, ping])
    if streaming:
        async with agent.run_stream("go") as events:
            async for _ in events:
                pass
        result = events.result
    else:
        result = await agent.run("go")
    await model.aclose()
    assert sorted(CALLS, key=repr) == sorted(expected, key=repr)
    assert result.output == "done"
    assistant = result.messages[1]
    ids = [call.id for call in calls_of(assistant)]
    assert len(ids) == len(expected)
    assert all(ids) and len(set(ids)) == len(ids)
    answered = [m.tool_call_id for m in result.messages if m.role == "tool"]
    assert answered == ids
    assert not any(m.is_error for m in result.messages if m.role == "tool")
    sent = server.requests[1].json()["messages"]
    wire_ids = [c["id"] for c in sent[1]["tool_calls"]]
    assert wire_ids == ids
    assert [m["tool_call_id"] for m in sent[2:]] == ids
    for call in sent[1]["tool_calls"]:
        json.loads(call["function"]["arguments"])  # valid JSON goes back to the server
    assert server.wait_closed(3)


@pytest.mark.parametrize("quirk", sorted(STREAMED))
async def test_streamed_tool_call_quirk(server, quirk):
    chunks, expected = STREAMED[quirk]
    first = Plan(200, {"Content-Type": "text/event-stream"}, sse_bytes(chunks))
    await _run_and_check(server, first, stream("done"), expected, streaming=True)


@pytest.mark.parametrize("quirk", sorted(WHOLE))
async def test_whole_body_tool_call_quirk(server, quirk):
    first, expected = WHOLE[quirk]
    await _run_and_check(server, first, ok("done"), expected, streaming=False)


@pytest.mark.parametrize("split", [1, 3])
async def test_tool_call_stream_split_at_every_byte(server, split):
    calls = [{"id": "c1", "function": {"name": "add", "arguments": ADD_23}},
             {"id": "c2", "function": {"name": "ping", "arguments": '{"note": "é"}'}}]  # fmt: skip
    first = stream(events=chunks_of(None, calls), split=split, newline="\r\n")
    await _run_and_check(
        server,
        first,
        stream("done", split=split),
        [("add", (2, 3)), ("ping", "é")],
        streaming=True,
    )
