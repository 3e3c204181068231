"""What a server cannot take as parameters, said in the prompt instead, and read back.

- Prompted tool mode (a server with no tool support): the tools are described in a system
  message, the model answers ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``, and
  `read_prompted_calls` turns that reply into ordinary tool calls, which then go through the same
  argument validation and re-asks as native ones. Earlier tool turns are sent as text: the calls
  as that JSON, their results as one user message per turn.
- JSON mode without a schema: the output schema is said in the system message (`schema_prompt`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._messages import AssistantMessage, Message, ToolCall, ToolDefinition, ToolMessage

__all__ = [
    "ANSWER_KEY",
    "ANSWER_SCHEMA",
    "add_system_text",
    "prompted_messages",
    "read_prompted_answer",
    "read_prompted_calls",
    "reply_schema",
    "schema_prompt",
    "tools_prompt",
]

# Patterns compiled on first use (`re` caches them), not at import: most servers take tools.
_FENCE_RE = r"```(?:json|JSON)?\s*(.*?)```"
_TAG_RE = r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)"
_COMPACT = (",", ":")
ANSWER_KEY = "answer"
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {ANSWER_KEY: {"type": "string"}},
    "required": [ANSWER_KEY],
    "additionalProperties": False,
}
"""A text answer, when a prompted-tools reply is held to a schema."""
_AFTER_RESULTS = "Answer with these results now, or call another tool if one is still needed."


def schema_prompt(schema: Mapping[str, Any]) -> str:
    """The instruction that asks for JSON valid against `schema`."""
    return (
        "Answer with a single JSON value, no prose and no code fences, that is valid against "
        f"this JSON schema:\n{json.dumps(schema, separators=_COMPACT)}"
    )


def tools_prompt(tools: Sequence[ToolDefinition], *, answer: str | None = None) -> str:
    """The system text that offers `tools` to a model whose server takes no ``tools``.

    `answer` says how to answer without a tool (when the reply is held to `reply_schema`).
    """
    direct = answer or "When you need no tool, answer directly."
    lines = [
        "You can call tools. To call one or more, answer with only this JSON, no other text:",
        '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}',
        f"Each result comes back in the next message. {direct}",
        "",
        "Tools:",
    ]
    for tool in tools:
        lines.append(f"- {tool.name}: {tool.description}".rstrip(": "))
        lines.append(
            f"  arguments (JSON schema): {json.dumps(tool.parameters, separators=_COMPACT)}"
        )
    return "\n".join(lines)


def add_system_text(wire: list[dict[str, Any]], text: str) -> None:
    """Append `text` to the leading system message of `wire`, or start it with one."""
    if wire and wire[0].get("role") in ("system", "developer"):
        first = wire[0]
        content = first.get("content")
        if isinstance(content, str):
            wire[0] = {**first, "content": f"{content}\n\n{text}" if content else text}
            return
    wire.insert(0, {"role": "system", "content": text})


def _calls_text(message: AssistantMessage) -> str:
    calls = [
        {"name": call.name, "arguments": _arguments_value(call.arguments)}
        for call in message.tool_calls
    ]
    text = json.dumps({"tool_calls": calls}, ensure_ascii=False, separators=_COMPACT)
    return f"{message.content}\n{text}" if message.content else text


def _arguments_value(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return arguments


def prompted_messages(
    messages: Sequence[Message], profile: Any, *, calls_as_text: bool = True
) -> list[dict[str, Any]]:
    """The wire messages with tool results as user turns (one per turn of results), and with
    `calls_as_text` the calls as text too (prompted tool mode)."""
    from .request import message_to_wire

    wire: list[dict[str, Any]] = []
    results: list[str] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            name = message.name or "tool"
            results.append(f"Result of {name} (call {message.tool_call_id}):\n{message.content}")
            continue
        if results:
            wire.append({"role": "user", "content": _results_text(results)})
            results = []
        if isinstance(message, AssistantMessage) and message.tool_calls and calls_as_text:
            wire.append({"role": "assistant", "content": _calls_text(message)})
        else:
            wire.append(message_to_wire(message, profile))
    if results:
        wire.append({"role": "user", "content": _results_text(results)})
    return wire


def _results_text(results: list[str]) -> str:
    return "\n\n".join([*results, _AFTER_RESULTS])


def _blocks(text: str) -> list[str]:
    """The JSON blocks of a reply inside fences or ``<tool_call>`` tags."""
    return [m.group(1) for m in re.finditer(_FENCE_RE, text, re.S)] + [
        m.group(1) for m in re.finditer(_TAG_RE, text, re.S)
    ]


def _from_first_brace(text: str) -> str | None:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    return text[start:] if start >= 0 else None


def _decode(candidate: str) -> Any:
    try:
        value, _ = json.JSONDecoder().raw_decode(candidate.strip())
    except ValueError:
        return None
    return value


def _as_calls(value: Any, names: frozenset[str]) -> list[tuple[str, Any]] | None:
    """(name, arguments) pairs when `value` is a tool-call reply, else None."""
    if isinstance(value, list):
        items = cast(list[Any], value)
        calls = [_as_call(item, names) for item in items]
        return [c for c in calls if c is not None] if items and all(calls) else None
    if not isinstance(value, dict):
        return None
    fields = cast(dict[str, Any], value)
    if isinstance(fields.get("tool_calls"), list):
        return _as_calls(fields["tool_calls"], frozenset())
    if isinstance(fields.get("tool_call"), dict):
        return _as_calls([fields["tool_call"]], frozenset())
    call = _as_call(fields, names)
    return [call] if call is not None else None


def _as_call(value: Any, names: frozenset[str]) -> tuple[str, Any] | None:
    """One call: ``{"name", "arguments"}`` (or ``parameters``, or OpenAI's ``function``)."""
    if not isinstance(value, dict):
        return None
    fields = cast(dict[str, Any], value)
    if isinstance(fields.get("function"), dict):
        fields = cast(dict[str, Any], fields["function"])
    name = fields.get("name")
    if not isinstance(name, str) or (names and name not in names):
        return None
    arguments = fields.get("arguments", fields.get("parameters", {}))
    return name, arguments


def read_prompted_calls(
    message: AssistantMessage, tools: Sequence[ToolDefinition]
) -> AssistantMessage:
    """The reply with the tool calls its text asked for, or unchanged when it asked for none.

    A bare ``{"name", "arguments"}`` object counts as a call only when it names one of `tools`,
    so that a structured answer is never mistaken for a call. Every fenced or ``<tool_call>``
    block counts (several calls may come that way); without blocks, the JSON from the first
    brace. The same call twice in one reply (small models repeat themselves) is made once.
    """
    text = message.content
    if message.tool_calls or not text or "{" not in text:
        return message
    names = frozenset(tool.name for tool in tools)
    calls = [c for block in _blocks(text) for c in _as_calls(_decode(block), names) or ()]
    if not calls:
        rest = _from_first_brace(text)
        calls = (_as_calls(_decode(rest), names) or []) if rest is not None else []
    if not calls:
        return message
    import uuid  # deferred: it loads `platform`, and only a reply with calls needs it

    unique = dict.fromkeys((name, _arguments_text(args)) for name, args in calls)
    tool_calls = tuple(
        ToolCall(f"call_{uuid.uuid4().hex[:12]}", name, arguments) for name, arguments in unique
    )
    return AssistantMessage(None, tool_calls, message.refusal, message.reasoning)


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=_COMPACT)


def _call_schema(tool: ToolDefinition) -> dict[str, Any]:
    parameters = {k: v for k, v in tool.parameters.items() if k != "$defs"}
    return {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": [tool.name]}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _defs(schemas: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The ``$defs`` of all `schemas` in one map, or None when two define a name differently."""
    merged: dict[str, Any] = {}
    for schema in schemas:
        for name, definition in cast(Mapping[str, Any], schema.get("$defs") or {}).items():
            if merged.setdefault(name, definition) != definition:
                return None
    return merged


def reply_schema(
    tools: Sequence[ToolDefinition],
    output: Mapping[str, Any] | None,
    *,
    required: bool,
    max_calls: int = 4,
) -> dict[str, Any] | None:
    """The schema a prompted-tools reply is held to: the tool-call JSON (each call valid against
    its tool's parameters) or, unless a call is `required`, the answer: `output` when the run
    wants structured output, else ``{"answer": "..."}``. None when it cannot be built (two
    schemas define the same ``$defs`` name differently): the reply is then not constrained."""
    schemas = [tool.parameters for tool in tools] + ([output] if output is not None else [])
    defs = _defs(schemas)
    if defs is None:
        return None
    items = {"anyOf": [_call_schema(tool) for tool in tools]}
    calls = {
        "type": "object",
        "properties": {
            "tool_calls": {"type": "array", "minItems": 1, "maxItems": max_calls, "items": items}
        },
        "required": ["tool_calls"],
        "additionalProperties": False,
    }
    answer = (
        {k: v for k, v in output.items() if k != "$defs"} if output is not None else ANSWER_SCHEMA
    )
    schema: dict[str, Any] = calls if required else {"anyOf": [calls, answer]}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def read_prompted_answer(message: AssistantMessage) -> AssistantMessage:
    """A constrained text reply ``{"answer": "..."}`` as the text it holds."""
    text = message.content
    if message.tool_calls or not text or ANSWER_KEY not in text:
        return message
    value = _decode(text)
    if isinstance(value, dict) and isinstance(cast(dict[str, Any], value).get(ANSWER_KEY), str):
        return dataclasses.replace(message, content=cast(dict[str, Any], value)[ANSWER_KEY])
    return message
