"""Messages in the GenAI conventions' format, for spans that capture content.

``gen_ai.input.messages`` and ``gen_ai.output.messages`` are JSON lists of ``{"role", "parts"}``
(parts: ``text``, ``tool_call``, ``tool_call_response``, ``uri``); system messages go to
``gen_ai.system_instructions`` as text parts. Every text is cut at a cap, visibly; an image sent
inline (a ``data:`` URL) is named by its type and size in a text part, never copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

__all__ = ["cut", "input_messages", "output_messages", "system_instructions"]

Part = dict[str, Any]


def cut(text: str, cap: int) -> str:
    """`text`, cut at `cap` characters with a marker that says how much is left out."""
    if len(text) <= cap:
        return text
    return f"{text[:cap]}...[{len(text) - cap} more characters]"


def system_instructions(messages: Sequence[Message], cap: int) -> str | None:
    texts = [m.content for m in messages if isinstance(m, SystemMessage)]
    if not texts:
        return None
    return _json([{"type": "text", "content": cut(text, cap)} for text in texts])


def input_messages(messages: Sequence[Message], cap: int) -> str:
    return _json([_message(m, cap) for m in messages if not isinstance(m, SystemMessage)])


_FINISH = {"tool_calls": "tool_call"}  # the conventions' names where they differ from the API's


def output_messages(message: AssistantMessage, finish_reason: str | None, cap: int) -> str:
    reason = _FINISH.get(finish_reason or "stop", finish_reason or "stop")
    return _json([{**_message(message, cap), "finish_reason": reason}])


def _message(message: Message, cap: int) -> dict[str, Any]:
    if isinstance(message, ToolMessage):
        part = {"type": "tool_call_response", "id": message.tool_call_id}
        return {"role": "tool", "parts": [{**part, "response": cut(message.content, cap)}]}
    if isinstance(message, AssistantMessage):
        parts: list[Part] = []
        if message.content:
            parts.append({"type": "text", "content": cut(message.content, cap)})
        for call in message.tool_calls:
            arguments = cut(call.arguments, cap)
            parts.append(
                {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}
            )
        return {"role": "assistant", "parts": parts}
    if isinstance(message, UserMessage):
        content = message.content
        if isinstance(content, str):
            return {"role": "user", "parts": [{"type": "text", "content": cut(content, cap)}]}
        return {"role": "user", "parts": list(_user_parts(content, cap))}
    return {"role": message.role, "parts": [{"type": "text", "content": cut(message.content, cap)}]}


def _user_parts(parts: Iterable[Mapping[str, Any]], cap: int) -> Iterable[Part]:
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            yield {"type": "text", "content": cut(str(part.get("text", "")), cap)}
        elif kind == "image_url":
            url = str(part.get("image_url", {}).get("url", ""))
            if url.startswith("data:"):  # inline: named, never copied
                kind = url[5:].split(";", 1)[0]
                yield {"type": "text", "content": f"[image {kind}, {len(url):,} characters]"}
            else:
                yield {"type": "uri", "modality": "image", "uri": cut(url, cap)}
        else:
            yield {"type": str(kind), "content": "(not copied)"}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
