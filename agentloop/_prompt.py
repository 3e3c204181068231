"""A prompt given as a list of dicts: an OpenAI-style conversation, or one user turn's parts.

The forms are documented on `agentloop.Prompt`. All is checked before a request is built: what
the API would reject is a `UsageError` naming the place (``prompt[2].tool_calls[0].function``).
Also: ``developer`` becomes a system message; system, assistant and tool contents may be lists of
text parts (joined with newlines, so such a part may carry no other field: ``cache_control`` is
kept on a user message's parts only); a key agentloop cannot send is an error unless it is None
(an assistant's response-only ``annotations`` are dropped); extra keys of a user message's parts
are kept as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from ._errors import UsageError
from ._messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage

__all__ = ["parse_prompt"]

Fields = Mapping[str, Any]

_PART_NEEDS = {
    "text": "a str 'text'",
    "image_url": "'image_url': {'url': str}",
    "input_audio": "'input_audio': {'data': str, 'format': str}",
    "file": "'file': {'file_id' or 'file_data': str}",
}
_TEXT_PART = {"type", "text"}
_REASONING = ("reasoning", "reasoning_content", "reasoning_details")
_BASE = {"role", "content"}
_KEYS = {"system": _BASE, "developer": _BASE, "user": _BASE, "assistant": _BASE, "tool": _BASE}
_KEYS["assistant"] = {*_BASE, "tool_calls", "refusal", "annotations", *_REASONING}
_KEYS["tool"] = {*_BASE, "tool_call_id", "name"}


def parse_prompt(prompt: object, history: Sequence[Message] = ()) -> list[Message]:
    """Check and convert a prompt (leading system messages included) that follows `history`."""
    if isinstance(prompt, str):
        return [UserMessage(prompt)]
    items = _dicts(prompt, "prompt")
    if items is None:
        raise UsageError(f"a prompt is a str or a list of dicts, not a {type(prompt).__name__}")
    if not items:
        raise UsageError("the prompt is an empty list; pass a str, messages or content parts")
    for index, fields in enumerate(items):
        if "role" not in fields and "type" not in fields:
            raise UsageError(f"prompt[{index}] has neither 'role' (a message) nor 'type' (a part)")
        if ("role" in fields) != ("role" in items[0]):
            raise UsageError(f"prompt[{index}]: a prompt lists messages or content parts, not both")
    if "role" not in items[0]:
        return [UserMessage(_parts(items, "prompt"))]
    return _conversation(items, history)


def _conversation(items: Sequence[Fields], history: Sequence[Message]) -> list[Message]:
    open_calls: set[str] = set()
    for message in history:
        open_calls = _unanswered(message, open_calls)
    messages: list[Message] = []
    leading = True  # leading system messages move to the front: they leave open calls open
    for index, fields in enumerate(items):
        message = _message(fields, f"prompt[{index}]")
        leading = leading and isinstance(message, SystemMessage)
        if isinstance(message, ToolMessage) and message.tool_call_id not in open_calls:
            raise UsageError(
                f"prompt[{index}]: tool_call_id {message.tool_call_id!r} answers no open tool call"
                " of the assistant message just before it"
            )
        open_calls = open_calls if leading else _unanswered(message, open_calls)
        messages.append(message)
    return messages


def _unanswered(message: Message, open_calls: set[str]) -> set[str]:
    """The tool calls still unanswered after `message`, if `open_calls` were before it."""
    if isinstance(message, ToolMessage):
        return open_calls - {message.tool_call_id}
    calls = message.tool_calls if isinstance(message, AssistantMessage) else ()
    return {call.id for call in calls}


def _message(fields: Fields, where: str) -> Message:
    role, content, at = fields.get("role"), fields.get("content"), f"{where}.content"
    if not isinstance(role, str) or role not in _KEYS:
        raise UsageError(f"{where}: unknown role {role!r}; the roles are {', '.join(_KEYS)}")
    for key, value in fields.items():
        if key not in _KEYS[role] and value is not None:
            raise UsageError(f"{where}: agentloop cannot send {key!r} in a {role} message")
    if role == "user":
        parts = _dicts(content, at)
        return UserMessage(_text(content, where) if parts is None else _parts(parts, at))
    if role == "assistant":
        return _assistant(fields, where)
    if role == "tool":
        name = _string(fields, "name", where, required=False) or None
        return ToolMessage(_string(fields, "tool_call_id", where), _text(content, where), name)
    return SystemMessage(_text(content, where))


def _assistant(fields: Fields, where: str) -> AssistantMessage:
    calls = _tool_calls(fields.get("tool_calls"), where)
    refusal = _string(fields, "refusal", where, required=False) or None
    content = fields.get("content")
    text = None if content is None else _text(content, where)
    if text is None and not calls and not refusal:
        raise UsageError(f"{where}: an assistant message needs content, tool_calls or a refusal")
    reasoning = {key: fields[key] for key in _REASONING if fields.get(key) is not None}
    return AssistantMessage(text, calls, refusal, reasoning)


def _text(content: object, where: str) -> str:
    parts = _dicts(content, f"{where}.content")
    if isinstance(content, str):
        return content
    if parts is None:
        raise UsageError(f"{where}: 'content' is a str or a list of parts, not {_kind(content)}")
    for index, part in enumerate(_parts(parts, f"{where}.content")):
        if part["type"] != "text":
            raise UsageError(f"{where}.content[{index}]: only a user message takes non-text parts")
        extra = sorted(
            key for key, value in part.items() if key not in _TEXT_PART and value is not None
        )
        if extra:  # joined into one text, the part's other fields would be lost without a word
            raise UsageError(
                f"{where}.content[{index}]: agentloop cannot send {extra[0]!r} here: only a user "
                "message's parts are sent as parts (these are joined into one text)"
            )
    return "\n".join(part["text"] for part in parts)


def _parts(parts: Sequence[Fields], where: str) -> tuple[Fields, ...]:
    if not parts:
        raise UsageError(f"{where}: an empty list of content parts")
    for index, part in enumerate(parts):
        kind = part.get("type")
        if not isinstance(kind, str) or kind not in _PART_NEEDS:
            known = ", ".join(_PART_NEEDS)
            raise UsageError(f"{where}[{index}]: unknown part type {kind!r}; the types are {known}")
        if not _part_ok(kind, part.get(kind)):
            raise UsageError(f"{where}[{index}]: the {kind!r} part needs {_PART_NEEDS[kind]}")
    return tuple(dict(part) for part in parts)


def _part_ok(kind: str, value: object) -> bool:
    if kind == "text" or not isinstance(value, Mapping):
        return isinstance(value, str) and kind == "text"
    inner = cast("Fields", value)
    if kind == "file":
        return isinstance(inner.get("file_id"), str) or isinstance(inner.get("file_data"), str)
    keys = ("url",) if kind == "image_url" else ("data", "format")
    return all(isinstance(inner.get(key), str) for key in keys)


def _tool_calls(value: object, where: str) -> tuple[ToolCall, ...]:
    calls = _dicts(value, f"{where}.tool_calls")
    if value is not None and calls is None:
        raise UsageError(f"{where}: 'tool_calls' is a list, not {_kind(value)}")
    return tuple(_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(calls or ()))


def _tool_call(fields: Fields, where: str) -> ToolCall:
    function = fields.get("function")
    if fields.get("type", "function") != "function" or not isinstance(function, Mapping):
        raise UsageError(f"{where}: a tool call is {{'type': 'function', 'function': {{...}}}}")
    function = cast("Fields", function)
    call_id, name = _string(fields, "id", where), _string(function, "name", f"{where}.function")
    arguments = _arguments(function.get("arguments"), f"{where}.function.arguments")
    return ToolCall(call_id, name, arguments)


def _arguments(value: object, where: str) -> str:
    """A JSON-object str as it is ("" or None: "{}"), or a dict dumped to one."""
    if value is None or value == "":
        return "{}"
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parsed: object = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(value, str | Mapping):
        raise UsageError(f"{where} must be a JSON object (a str or a dict), not {value!r:.80}")
    return text


def _string(fields: Fields, key: str, where: str, *, required: bool = True) -> str:
    value = fields.get(key)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise UsageError(f"{where}: {key!r} is a non-empty str, not {_kind(value)}")


def _dicts(value: object, where: str) -> list[Fields] | None:
    """The dicts of a list or tuple `value` (None if it is neither); `where` names the list."""
    if not isinstance(value, list | tuple):
        return None
    items = cast("list[object]", value)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            hint = " (agentloop messages go in history=)" if isinstance(item, Message) else ""
            raise UsageError(f"{where}[{index}] is a {type(item).__name__}, not a dict{hint}")
    return cast("list[Fields]", items)


def _kind(value: object) -> str:
    return "null (or missing)" if value is None else type(value).__name__
