"""Prompted tool mode, tool results as text and the schema prompt at the wire.

Unit tests of `_prompted` / `_request` / `_adapt`, then whole runs against `QuirkServer` with a
profile given (so nothing is learned and the wire shape is the profile's alone).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from support.prompted_requests import (
    ADD,
    CALL,
    HISTORY,
    OUTPUT,
    PROMPTED,
    TOOLS,
    WANTED,
    Total,
    body_for,
    request,
)
from support.quirk_server import QuirkServer, instance

from agentloop import (
    Agent,
    AssistantMessage,
    ModelResponse,
    ModelSettings,
    OpenAICompatible,
    RequestUsage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from agentloop._messages import ToolDefinition
from agentloop._wire.adapt import adapt_response
from agentloop._wire.profiles import DEFAULT_PROFILE, OPTIMISTIC_PROFILE
from agentloop._wire.prompted import (
    ANSWER_SCHEMA,
    read_prompted_answer,
    read_prompted_calls,
    reply_schema,
    schema_prompt,
    tools_prompt,
)


def calls_of(text: str, tools: tuple[ToolDefinition, ...] = TOOLS) -> list[tuple[str, Any]]:
    message = read_prompted_calls(AssistantMessage(text), tools)
    return [(c.name, json.loads(c.arguments)) for c in message.tool_calls]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"tool_calls": [CALL]}),
        "  " + json.dumps({"tool_calls": [CALL]}) + "\n",
        f"```json\n{json.dumps({'tool_calls': [CALL]})}\n```",
        f"```\n{json.dumps({'tool_calls': [CALL]})}\n```",
        f"```JSON\n{json.dumps(CALL)}\n```",
        f"I will add them.\n```json\n{json.dumps({'tool_calls': [CALL]})}\n```\nDone.",
        f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>",
        f"<tool_call>{json.dumps(CALL)}",  # the closing tag cut off by the token cap
        f"Let me use a tool. {json.dumps({'tool_calls': [CALL]})}",
        json.dumps(CALL),  # a bare call naming a tool
        json.dumps([CALL]),  # a bare list of calls
        json.dumps({"tool_call": CALL}),
        json.dumps({"name": "add", "parameters": {"a": 2, "b": 3}}),
        json.dumps({"tool_calls": [{"type": "function", "function": CALL}]}),
        json.dumps({"tool_calls": [{"name": "add", "arguments": '{"a": 2, "b": 3}'}]}),
        json.dumps({"tool_calls": [CALL, CALL]}),  # the same call twice is made once
        json.dumps(CALL) + " trailing words",
    ],
)
def test_calls_are_read_from_each_form_a_model_writes(text: str) -> None:
    assert calls_of(text) == WANTED


def test_a_reply_with_calls_becomes_a_tool_call_turn() -> None:
    reply = AssistantMessage(json.dumps({"tool_calls": [CALL]}), reasoning={"reasoning": "r"})
    message = read_prompted_calls(reply, TOOLS)
    assert message.content is None
    assert message.reasoning == {"reasoning": "r"}
    (call,) = message.tool_calls
    assert call.id.startswith("call_") and len(call.id) == len("call_") + 12
    assert json.loads(call.arguments) == {"a": 2, "b": 3}


def test_two_calls_in_one_reply_get_their_own_ids() -> None:
    other = {"name": "echo", "arguments": {"word": "hi"}}
    message = read_prompted_calls(
        AssistantMessage(json.dumps({"tool_calls": [CALL, other]})), TOOLS
    )
    assert [c.name for c in message.tool_calls] == ["add", "echo"]
    assert len({c.id for c in message.tool_calls}) == 2


@pytest.mark.parametrize(
    "text",
    [
        "The total is 5.",
        "",
        json.dumps({"total": 5, "note": "ok"}),  # a structured answer is not a call
        json.dumps({"name": "Ada", "arguments": "none"}),  # a bare object naming no tool
        json.dumps([CALL, {"name": "nope", "arguments": {}}]),  # a bare list: every item a call
        json.dumps({"tool_calls": []}),
        "{not json at all",
        "Sure {ok}",
    ],
)
def test_replies_that_are_not_calls_stay_as_they_are(text: str) -> None:
    message = AssistantMessage(text)
    assert read_prompted_calls(message, TOOLS) is message


def test_a_reply_that_has_native_calls_is_kept() -> None:
    message = AssistantMessage(json.dumps({"tool_calls": [CALL]}), (ToolCall("c", "echo", "{}"),))
    assert read_prompted_calls(message, TOOLS) is message


def test_a_tool_calls_list_may_name_an_unknown_tool() -> None:
    """The wrapper says it is a call: the unknown name goes on to the loop, which re-asks."""
    assert calls_of(json.dumps({"tool_calls": [{"name": "nope", "arguments": {}}]})) == [
        ("nope", {})
    ]


@pytest.mark.parametrize("wrap", ["<tool_call>\n{}\n</tool_call>", "```json\n{}\n```"])
def test_two_tagged_or_fenced_calls_are_both_made(wrap: str) -> None:
    other = {"name": "echo", "arguments": {"word": "hi"}}
    text = "\n".join(wrap.replace("{}", json.dumps(c)) for c in (CALL, other))
    assert calls_of(text) == [*WANTED, ("echo", {"word": "hi"})]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": "It is 5."}', "It is 5."),
        (' {"answer": "It is 5."} ', "It is 5."),
        ('{"answer": 5}', '{"answer": 5}'),  # not a text answer: kept
        ("The answer is 5.", "The answer is 5."),
        ('{"total": 5}', '{"total": 5}'),
    ],
)
def test_a_constrained_answer_is_unwrapped(text: str, expected: str) -> None:
    assert read_prompted_answer(AssistantMessage(text)).content == expected


def validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_reply_schema_takes_valid_calls_and_the_answer() -> None:
    schema = reply_schema(TOOLS, None, required=False)
    assert schema is not None
    check = validator(schema)
    assert check.is_valid({"tool_calls": [CALL]})
    assert check.is_valid({"tool_calls": [CALL, {"name": "echo", "arguments": {"word": "x"}}]})
    assert check.is_valid({"answer": "It is 5."})
    bad = [
        {"tool_calls": [{"name": "mul", "arguments": {"a": 2, "b": 3}}]},  # no such tool
        {"tool_calls": [{"name": "add", "arguments": {"a": "2", "b": 3}}]},  # a wrong type
        {"tool_calls": [{"name": "add", "arguments": {"a": 2}}]},  # a missing argument
        {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3, "c": 4}}]},  # extra
        {"tool_calls": [{"name": "echo", "arguments": {"a": 2, "b": 3}}]},  # another's args
        {"tool_calls": [{"name": "add"}]},
        {"tool_calls": []},
        {"tool_calls": [CALL] * 5},  # more than max_calls
        {"answer": 5},
        {"answer": "x", "tool_calls": [CALL]},
        "It is 5.",
    ]
    for value in bad:
        assert not check.is_valid(value), value


def test_reply_schema_for_a_required_call_has_no_answer() -> None:
    schema = reply_schema(TOOLS, None, required=True, max_calls=1)
    assert schema is not None
    check = validator(schema)
    assert check.is_valid({"tool_calls": [CALL]})
    assert not check.is_valid({"answer": "It is 5."})
    assert not check.is_valid({"tool_calls": [CALL, CALL]})


def test_reply_schema_with_structured_output() -> None:
    schema = reply_schema((ADD,), OUTPUT, required=False)
    assert schema is not None
    check = validator(schema)
    assert check.is_valid({"total": 5, "note": "ok"})
    assert check.is_valid({"tool_calls": [CALL]})
    assert not check.is_valid({"answer": "It is 5."})
    assert not check.is_valid({"total": "5", "note": "ok"})


def test_reply_schema_merges_defs_and_keeps_refs_valid() -> None:
    item = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
    order = ToolDefinition(
        "order",
        "Order items.",
        {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
            "required": ["items"],
            "$defs": {"Item": item},
        },
    )
    output = {
        "type": "object",
        "properties": {"best": {"$ref": "#/$defs/Item"}},
        "required": ["best"],
        "$defs": {"Item": item},
    }
    schema = reply_schema((order,), output, required=False)
    assert schema is not None and schema["$defs"] == {"Item": item}
    check = validator(schema)
    good_call = {"tool_calls": [{"name": "order", "arguments": {"items": [{"sku": "a"}]}}]}
    assert check.is_valid(good_call)
    assert not check.is_valid({"tool_calls": [{"name": "order", "arguments": {"items": [{}]}}]})
    assert check.is_valid({"best": {"sku": "b"}})
    assert not check.is_valid({"best": {}})


def test_reply_schema_is_none_when_defs_conflict() -> None:
    first = ToolDefinition("a", "", {"type": "object", "$defs": {"X": {"type": "string"}}})
    second = ToolDefinition("b", "", {"type": "object", "$defs": {"X": {"type": "integer"}}})
    assert reply_schema((first, second), None, required=False) is None


def test_the_quirk_servers_answers_are_valid_replies() -> None:
    """The fake server's own answers pass the schema they are held to (a self-check)."""
    schema = reply_schema(TOOLS, OUTPUT, required=False)
    assert schema is not None
    check = validator(schema)
    assert check.is_valid(instance(schema))
    assert check.is_valid({"tool_calls": [{"name": "add", "arguments": instance(ADD.parameters)}]})


def test_prompted_tools_go_in_the_system_message_not_the_parameters() -> None:
    body = body_for(PROMPTED, request(settings=ModelSettings(tool_choice="auto")))
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body
    system = body["messages"][0]
    assert system["role"] == "system"
    hint = 'When you need no tool, answer with {"answer": "<your answer>"}.'
    assert system["content"] == tools_prompt(TOOLS, answer=hint)
    assert "- add: Add two integers." in system["content"]
    assert "- echo: Repeat a word." in system["content"]
    assert json.dumps(ADD.parameters, separators=(",", ":")) in system["content"]
    fmt = body["response_format"]
    assert fmt == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": reply_schema(TOOLS, None, required=False)},
    }
    assert '{"answer": "<your answer>"}' in system["content"]


def test_prompted_history_sends_calls_and_results_as_text() -> None:
    body = body_for(PROMPTED, request(HISTORY))
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"].startswith("Be brief.\n\nYou can call tools.")
    assert json.loads(body["messages"][2]["content"]) == {
        "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]
    }
    results = body["messages"][3]["content"]
    assert results.startswith("Result of add (call call_1):\n5\n\n")
    assert "tool_calls" not in body["messages"][2]


def test_results_of_one_turn_are_one_user_message() -> None:
    history = (
        UserMessage("Both."),
        AssistantMessage(
            "Calling.", (ToolCall("c1", "add", '{"a":1,"b":1}'), ToolCall("c2", "echo", "{}"))
        ),
        ToolMessage("c1", "2", "add"),
        ToolMessage("c2", "hi", "echo"),
    )
    body = body_for(PROMPTED, request(history))
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"].startswith("Calling.\n{")
    text = body["messages"][3]["content"]
    assert "Result of add (call c1):\n2" in text and "Result of echo (call c2):\nhi" in text


@pytest.mark.parametrize(
    ("support", "expected"),
    [
        ("json_schema", "json_schema"),
        ("json_object_schema", "json_object_schema"),
        ("json_object", "json_object"),
        ("none", None),
    ],
)
def test_the_reply_is_held_to_a_schema_only_where_the_server_takes_one(
    support: str, expected: str | None
) -> None:
    profile = PROMPTED.replace(response_format=support)
    body = body_for(profile, request())
    schema = reply_schema(TOOLS, None, required=False)
    system = body["messages"][0]["content"]
    if expected == "json_schema":
        assert body["response_format"]["json_schema"]["schema"] == schema
    elif expected == "json_object_schema":
        assert body["response_format"] == {"type": "json_object", "schema": schema}
    else:  # JSON mode without a schema holds nothing: no format without structured output
        assert "response_format" not in body
    constrained = expected in ("json_schema", "json_object_schema")
    assert ('{"answer": "<your answer>"}' in system) is constrained
    assert ("When you need no tool, answer directly." in system) is not constrained


@pytest.mark.parametrize(
    ("choice", "offered", "required"),
    [(None, ["add", "echo"], False), ("required", ["add", "echo"], True), ("echo", ["echo"], True)],
)
def test_tool_choice_in_prompted_mode(choice: Any, offered: list[str], required: bool) -> None:
    body = body_for(PROMPTED, request(settings=ModelSettings(tool_choice=choice)))
    schema = body["response_format"]["json_schema"]["schema"]
    tools = [t for t in TOOLS if t.name in offered]
    assert schema == reply_schema(tools, None, required=required)
    system = body["messages"][0]["content"]
    assert [n for n in ("add", "echo") if f"- {n}:" in system] == offered


def test_tool_choice_none_in_prompted_mode_offers_nothing_and_asks_for_the_answer() -> None:
    body = body_for(PROMPTED, request(HISTORY, settings=ModelSettings(tool_choice="none")))
    assert "You can call tools" not in json.dumps(body["messages"])
    assert body["response_format"]["json_schema"]["schema"] == ANSWER_SCHEMA
    assert body["messages"][0]["content"].endswith('Answer with {"answer": "<your answer>"}.')
    assert body["messages"][3]["content"].startswith("Result of add")  # history still as text


@pytest.mark.parametrize("support", ["json_object", "none"])
def test_tool_choice_none_where_no_schema_is_taken_leaves_the_answer_free(support: str) -> None:
    profile = PROMPTED.replace(response_format=support)
    body = body_for(profile, request(HISTORY, settings=ModelSettings(tool_choice="none")))
    assert "response_format" not in body
    assert '"answer"' not in json.dumps(body["messages"])


def test_with_tool_choice_none_a_reply_that_looks_like_a_call_is_the_answer() -> None:
    none = request(HISTORY, settings=ModelSettings(tool_choice="none"))
    text = json.dumps({"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]})
    reply = ModelResponse(AssistantMessage(text), RequestUsage(), "stop")
    assert adapt_response(reply, none, PROMPTED).message == AssistantMessage(text)
    wrapped = ModelResponse(AssistantMessage('{"answer": "3"}'), RequestUsage(), "stop")
    assert adapt_response(wrapped, none, PROMPTED).message.content == "3"
    called = adapt_response(reply, request(HISTORY), PROMPTED).message
    assert [c.name for c in called.tool_calls] == ["add"]  # where calls are offered, a call


def test_no_parallel_calls_means_one_call_per_reply() -> None:
    body = body_for(PROMPTED, request(settings=ModelSettings(parallel_tool_calls=False)))
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["anyOf"][0]["properties"]["tool_calls"]["maxItems"] == 1


def test_prompted_tools_with_output_hold_the_reply_to_call_or_output() -> None:
    body = body_for(PROMPTED, request(output=OUTPUT))
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema == reply_schema(TOOLS, OUTPUT, required=False)
    system = body["messages"][0]["content"]
    assert "answer with the JSON of your final answer" in system
    assert schema_prompt(OUTPUT) not in system  # the server takes the schema itself


def test_prompted_tools_with_output_in_json_mode_say_both_in_the_prompt() -> None:
    profile = PROMPTED.replace(response_format="json_object")
    body = body_for(profile, request(output=OUTPUT))
    system = body["messages"][0]["content"]
    assert "You can call tools." in system and schema_prompt(OUTPUT) in system
    assert body["response_format"] == {"type": "json_object"}
    assert system.count("valid against this JSON schema") == 1


def test_tool_results_as_text_keeps_native_calls() -> None:
    profile = OPTIMISTIC_PROFILE.replace(tool_results_as_text=True)
    body = body_for(profile, request(HISTORY))
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "add"
    assert body["messages"][3]["content"].startswith("Result of add (call call_1):\n5")
    assert [t["function"]["name"] for t in body["tools"]] == ["add", "echo"]


@pytest.mark.parametrize(
    ("support", "prompt"),
    [("json_schema", False), ("json_object_schema", True), ("json_object", True), ("none", True)],
)
def test_the_output_schema_is_said_in_the_prompt_where_the_format_cannot_carry_it(
    support: str, prompt: bool
) -> None:
    profile = OPTIMISTIC_PROFILE.replace(response_format=support)
    body = body_for(profile, request((UserMessage("Total?"),), tools=(), output=OUTPUT))
    said = schema_prompt(OUTPUT)
    text = json.dumps(body["messages"])
    assert (json.dumps(said)[1:-1] in text) is prompt
    if prompt:
        assert body["messages"][0] == {"role": "system", "content": said}
    if support == "none":
        assert "response_format" not in body


def test_the_schema_prompt_joins_the_existing_system_message() -> None:
    profile = OPTIMISTIC_PROFILE.replace(response_format="json_object")
    req = request((SystemMessage("Be brief."), UserMessage("Total?")), tools=(), output=OUTPUT)
    body = body_for(profile, req)
    assert body["messages"][0]["content"] == f"Be brief.\n\n{schema_prompt(OUTPUT)}"
    assert len(body["messages"]) == 2


@pytest.mark.anyio
async def test_json_mode_output_run_asks_for_the_schema_once() -> None:
    """A whole run on a JSON-mode profile: the schema is said once, at the wire."""
    with QuirkServer() as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=DEFAULT_PROFILE)
        result = await Agent(model, output_type=Total, output_mode="native").run("Total?")
    assert result.output == Total(total=2, note="x")
    (body,) = server.bodies
    assert json.dumps(body["messages"]).count("valid against this JSON schema") == 1
    assert body["response_format"] == {"type": "json_object"}
