"""Stream chunks in, deltas out, and one `ModelResponse` at the end.

`StreamAccumulator` reads the chunks of a streamed chat completion (decoded SSE events or parsed
chunks) and returns, for each, the deltas a caller can show at once. Chunks are what `json.loads`
gives: objects are dicts, arrays lists. Fragments are kept in lists
and joined once, so a stream costs linear time. The final answer is built by the same rules as a
JSON body (`_response.parse_message`), from a wire-shaped message assembled here.

Tool calls are keyed by the server's ``index`` but numbered in order of arrival: a delta with a
new index, or a known index with a different id (all parallel calls at index 0), or with no index
and a name (whole calls in one delta) starts a new call. Ids, names and types repeated in later
deltas are set once and never appended. `ToolCallStarted` is sent once the call's name is known;
arguments that came before it follow it in one `ToolArgumentsDelta`.

Content that opens with ``<think>`` is streamed as `ReasoningDelta` until ``</think>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._errors import IncompleteStreamError, ProtocolError
from .._events import (
    ReasoningDelta,
    RefusalDelta,
    StreamDelta,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStarted,
)
from .._json import loads
from .._messages import ModelResponse
from .response import (
    REASONING_KEYS,
    as_mapping,
    call_id,
    content_parts,
    normalize_finish_reason,
    parse_message,
    parse_usage,
    raise_error_body,
)
from .sse import SSEEvent
from .status import status_error

__all__ = [
    "ReasoningDelta",
    "RefusalDelta",
    "StreamAccumulator",
    "StreamDelta",
    "TextDelta",
    "ToolArgumentsDelta",
    "ToolCallStarted",
]


_KNOWN_TOP = frozenset({"id", "model", "choices", "usage", "error"})
_RARE_KEYS = frozenset(
    {
        "refusal",
        "reasoning",
        "reasoning_content",
        "reasoning_details",
        "tool_calls",
        "function_call",
    }
)
_OPEN, _CLOSE = "<think>", "</think>"


class _Call:
    __slots__ = ("id", "name", "parts", "wire_id")

    def __init__(self) -> None:
        self.wire_id: str | None = None
        self.id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []


class _ThinkSplitter:
    """Routes content fragments to text or reasoning while a leading ``<think>`` block lasts."""

    __slots__ = ("_held", "_state")

    def __init__(self) -> None:
        self._state = "start"
        self._held = ""

    def feed(self, text: str, out: list[StreamDelta]) -> None:
        if self._state == "text":
            out.append(TextDelta(text))
        elif self._state == "start":
            self._start(self._held + text, out)
        elif self._state == "think":
            self._think(self._held + text, out)
        else:
            self._after(text, out)

    def _start(self, text: str, out: list[StreamDelta]) -> None:
        stripped = text.lstrip()
        if stripped.startswith(_OPEN):
            self._state, self._held = "think", ""
            self._think(stripped[len(_OPEN) :], out)
        elif _OPEN.startswith(stripped):
            self._held = text
        else:
            self._state, self._held = "text", ""
            out.append(TextDelta(text))

    def _think(self, text: str, out: list[StreamDelta]) -> None:
        end = text.find(_CLOSE)
        if end >= 0:
            if end:
                out.append(ReasoningDelta(text[:end]))
            self._state, self._held = "after", ""
            self._after(text[end + len(_CLOSE) :], out)
            return
        keep = next((n for n in range(len(_CLOSE) - 1, 0, -1) if text.endswith(_CLOSE[:n])), 0)
        if len(text) > keep:
            out.append(ReasoningDelta(text[: len(text) - keep]))
        self._held = text[len(text) - keep :] if keep else ""

    def _after(self, text: str, out: list[StreamDelta]) -> None:
        text = text.lstrip()
        if text:
            self._state = "text"
            out.append(TextDelta(text))


class StreamAccumulator:
    """Feed events (or parsed chunks); read the deltas; call `response` at the end."""

    def __init__(self) -> None:
        self._done = False
        self._id: str | None = None
        self._model: str | None = None
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._refusal: list[str] = []
        self._reasoning: dict[str, list[str]] = {}
        self._details: list[dict[str, Any]] = []
        self._calls: list[_Call] = []
        self._by_index: dict[int, int] = {}
        self._used_ids: set[str] = set()
        self._finish: str | None = None
        self._usage: Any = None
        self._groq: Any = None
        self._extra: dict[str, Any] = {}
        self._think = _ThinkSplitter()

    @property
    def done(self) -> bool:
        """Whether ``[DONE]`` was seen."""
        return self._done

    def feed_event(self, event: SSEEvent) -> list[StreamDelta]:
        """Read one SSE event: ``[DONE]``, an ``error`` event, or a JSON chunk."""
        if self._done:
            return []
        data = event.data
        if event.event == "error":
            body = _loads(data, strict=False)
            if isinstance(body, Mapping) and "error" in body:
                raise_error_body(body)  # pyright: ignore[reportUnknownArgumentType]
            raise status_error(500, body)
        if data[:1] != "{" and (data == "[DONE]" or data.strip() == "[DONE]"):
            self._done = True
            return []
        if not data or data.isspace():  # ``data:`` with nothing in it: a keep-alive, not a chunk
            return []
        chunk = _loads(data, strict=True)
        if not isinstance(chunk, dict):
            raise ProtocolError(f"a stream chunk is not a JSON object: {data[:200]!r}")
        return self.feed_chunk(chunk)  # pyright: ignore[reportUnknownArgumentType]

    def feed_chunk(self, chunk: Mapping[str, Any]) -> list[StreamDelta]:
        """Read one parsed chunk; return its deltas (choice 0 only)."""
        if chunk.get("error") is not None:
            raise_error_body(chunk)
        self._meta(chunk)
        choices = chunk.get("choices")
        out: list[StreamDelta] = []
        if not choices:
            return out
        if not isinstance(choices, list):
            raise ProtocolError(f"chunk.choices is not a list: {str(choices)[:200]}")
        for choice in choices:  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(choice, dict):
                raise ProtocolError(f"a chunk choice is not an object: {str(choice)[:200]}")  # pyright: ignore[reportUnknownArgumentType]
            if choice.get("index") in (0, None):  # pyright: ignore[reportUnknownMemberType]
                self._choice(choice, chunk, out)  # pyright: ignore[reportUnknownArgumentType]
        return out

    def response(self) -> ModelResponse:
        """The whole answer; `IncompleteStreamError` if the stream never finished."""
        if not self._done and self._finish is None:
            raise IncompleteStreamError(
                "the stream ended with neither a finish_reason nor [DONE]",
                partial=self._build(lenient=True),
            )
        return self._build(lenient=False)

    def _meta(self, chunk: Mapping[str, Any]) -> None:
        if self._id is None:
            ident = chunk.get("id")
            self._id = ident if isinstance(ident, str) and ident else None
        if self._model is None:
            model = chunk.get("model")
            self._model = model if isinstance(model, str) and model else None
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        groq = chunk.get("x_groq")
        if isinstance(groq, dict) and groq.get("usage") is not None:  # pyright: ignore[reportUnknownMemberType]
            self._groq = groq
        for key, value in chunk.items():
            if key not in _KNOWN_TOP:
                self._extra[key] = value

    def _choice(
        self, choice: Mapping[str, Any], chunk: Mapping[str, Any], out: list[StreamDelta]
    ) -> None:
        finish = choice.get("finish_reason")
        if finish == "error":
            raise status_error(
                500, {"error": {"message": "the model stopped with finish_reason 'error'"}, **chunk}
            )
        if isinstance(finish, str) and finish:
            self._finish = finish
        delta = choice.get("delta")
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise ProtocolError(f"choices[0].delta is not an object: {str(delta)[:200]}")  # pyright: ignore[reportUnknownArgumentType]
        self._delta(delta, out)  # pyright: ignore[reportUnknownArgumentType]

    def _delta(self, delta: Mapping[str, Any], out: list[StreamDelta]) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                self._text.append(content)
                self._think.feed(content, out)
        elif isinstance(content, list):
            texts, thinking = content_parts(content)  # pyright: ignore[reportUnknownArgumentType]
            for text in thinking:
                self._thinking.append(text)
                out.append(ReasoningDelta(text))
            for text in texts:
                self._text.append(text)
                self._think.feed(text, out)
        elif content is not None:
            raise ProtocolError(f"delta.content is neither text nor parts: {str(content)[:200]}")
        if _RARE_KEYS.isdisjoint(delta):
            return
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal.append(refusal)
            out.append(RefusalDelta(refusal))
        self._reasoning_delta(delta, out)
        calls = delta.get("tool_calls")
        if not calls:
            legacy = delta.get("function_call")
            calls: Any = [{"index": 0, "function": legacy}] if as_mapping(legacy) else None
        if calls:
            if not isinstance(calls, list):
                raise ProtocolError(f"delta.tool_calls is not a list: {str(calls)[:200]}")
            for call in calls:  # pyright: ignore[reportUnknownVariableType]
                self._tool_delta(call, out)

    def _reasoning_delta(self, delta: Mapping[str, Any], out: list[StreamDelta]) -> None:
        shown = False
        for key in ("reasoning", "reasoning_content"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._reasoning.setdefault(key, []).append(text)
                if not shown:
                    shown = True
                    out.append(ReasoningDelta(text))
        details = delta.get("reasoning_details")
        if isinstance(details, list):
            for item in details:  # pyright: ignore[reportUnknownVariableType]
                _merge_detail(self._details, item)

    def _tool_delta(self, raw: Any, out: list[StreamDelta]) -> None:
        fields = as_mapping(raw)
        if fields is None:
            raise ProtocolError(f"a tool call delta is not an object: {str(raw)[:200]}")
        fn = as_mapping(fields.get("function") or fields.get("custom") or {})
        if fn is None:
            raise ProtocolError(f"a tool call's function is not an object: {str(raw)[:200]}")  # pyright: ignore[reportUnknownArgumentType]
        wire_id = _text(fields.get("id"))
        name = _text(fn.get("name"))
        args = fn.get("arguments", fn.get("input"))
        position = self._locate(fields.get("index"), wire_id, name)
        call = self._calls[position]
        if wire_id and call.wire_id is None:
            call.wire_id = wire_id
        fragment = args if isinstance(args, str) else ""
        if isinstance(args, Mapping | list):
            fragment = json.dumps(args, ensure_ascii=False)
        if fragment:
            call.parts.append(fragment)
        if call.name is None and name:
            call.name = name
            call.id = call_id(call.wire_id, self._id, position, self._used_ids)
            out.append(ToolCallStarted(position, call.id, name))
            if call.parts:
                joined = "".join(call.parts)
                call.parts = [joined]
                out.append(ToolArgumentsDelta(position, call.id, joined))
        elif call.id is not None and fragment:
            out.append(ToolArgumentsDelta(position, call.id, fragment))

    def _locate(self, index: Any, wire_id: str | None, name: str | None) -> int:
        if isinstance(index, int) and not isinstance(index, bool):
            position = self._by_index.get(index)
            if position is not None and not self._is_new(self._calls[position], wire_id, name):
                return position
            self._by_index[index] = len(self._calls)
        elif self._calls:  # no index: continue the last call only when nothing says "new call"
            last_id = self._calls[-1].wire_id
            if (wire_id and wire_id == last_id) or (not wire_id and not name):
                return len(self._calls) - 1
        self._calls.append(_Call())
        return len(self._calls) - 1

    @staticmethod
    def _is_new(call: _Call, wire_id: str | None, name: str | None) -> bool:
        if wire_id and call.wire_id:
            return wire_id != call.wire_id
        return bool(name and call.name and name != call.name)

    def _wire_message(self, lenient: bool) -> dict[str, Any]:
        text = "".join(self._text)
        content: Any = text or None
        if self._thinking:
            content = [{"type": "thinking", "thinking": "".join(self._thinking)}]
            content.append({"type": "text", "text": text})
        message: dict[str, Any] = {"content": content, "refusal": "".join(self._refusal) or None}
        for key in REASONING_KEYS[:2]:
            if key in self._reasoning:
                message[key] = "".join(self._reasoning[key])
        if self._details:
            message["reasoning_details"] = self._details
        calls = [c for c in self._calls if c.name or not lenient]
        message["tool_calls"] = [
            {"id": c.id, "function": {"name": c.name, "arguments": "".join(c.parts)}} for c in calls
        ]
        return message

    def _build(self, lenient: bool) -> ModelResponse:
        finish, raw_finish = normalize_finish_reason(self._finish)
        return ModelResponse(
            message=parse_message(self._wire_message(lenient), self._id),
            usage=parse_usage(self._usage, self._groq),
            finish_reason=finish,
            raw_finish_reason=raw_finish,
            model=self._model,
            id=self._id,
            extra=dict(self._extra),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _loads(data: str, *, strict: bool) -> Any:
    try:
        return loads(data)
    except (ValueError, RecursionError):  # nested beyond the parser's depth is unreadable
        if strict:
            raise ProtocolError(f"a stream event's data is not JSON: {data[:200]!r}") from None
        return data


_TEXT_FIELDS = ("text", "summary", "data")


def _merge_detail(details: list[dict[str, Any]], item: Any) -> None:
    """Merge streamed ``reasoning_details`` fragments: items of the same type and index are one
    item whose text fields are concatenated and whose other fields keep their last non-empty
    value (the shape a non-streamed body has)."""
    if not isinstance(item, Mapping):
        return
    fields: Mapping[str, Any] = item  # pyright: ignore[reportUnknownVariableType]
    last = details[-1] if details else None
    if (
        last is None
        or fields.get("index") is None
        or last.get("index") != fields.get("index")
        or last.get("type") != fields.get("type")
    ):
        details.append(dict(fields))
        return
    for key, value in fields.items():
        if key in _TEXT_FIELDS and isinstance(value, str) and isinstance(last.get(key), str):
            last[key] += value
        elif value is not None and value != "":
            last[key] = value
