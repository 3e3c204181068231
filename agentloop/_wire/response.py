"""Read a non-streamed chat-completions body into a `ModelResponse`, and the normalization rules
that the stream accumulator (`_stream.py`) shares.

Decisions, in the order a body is read:

- A top-level ``error`` (whatever the status) raises the typed error of `status_error`; the
  status is the error's own code when it is a number (OpenRouter, Azure), else its
  ``status_code`` (Groq), else 400 for an ``invalid_request_error``, else 500: a server that
  answers with an error it does not classify failed.
- Choice 0 is read: the choice whose ``index`` is 0, else the first. Others (n > 1) are ignored.
- ``content`` is a string or a list of typed parts: ``text`` parts are joined; ``thinking`` parts
  (Mistral) go to ``reasoning["thinking"]``. An empty content is None.
- A ``<think>...</think>`` block at the start of the content is moved to ``reasoning["think"]``
  (stripped); the content is what follows it. An unclosed block is all reasoning (the answer had
  not begun when the model stopped).
- ``reasoning``, ``reasoning_content`` and ``reasoning_details`` are kept verbatim when not empty.
- Tool calls: arguments are kept as the raw text; missing, null or ``""`` become ``"{}"`` and an
  object (some servers send one) is serialized. A call without an id gets
  ``call_<hash of response id and position>`` (random when the response has no id); a repeated id
  gets a ``_2``, ``_3``... suffix. The legacy ``function_call`` is read as one tool call.
- ``finish_reason``: ``stop``/``eos``/``end_turn``/``stop_sequence`` → stop,
  ``length``/``max_tokens`` → length, ``tool_calls``/``function_call``/``tool_use`` → tool_calls,
  ``content_filter``, ``error``; ``""`` → None; anything else is kept in ``raw_finish_reason`` only.
- Usage: ``usage`` (else Groq's ``x_groq.usage``); cached tokens from
  ``prompt_tokens_details.cached_tokens`` (else Together's ``cached_tokens``, else DeepSeek's
  ``prompt_cache_hit_tokens``); missing numbers are 0; OpenRouter's ``cost`` is kept. Mistral's
  undocumented ``num_cached_tokens`` is not read: its cache hits, billed at the cached rate, are
  in ``prompt_tokens_details``. No usage object, or one with no readable
  ``prompt_tokens``/``completion_tokens``, gives ``reported=False``: the tokens are unknown,
  not zero.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast

from .._errors import ProtocolError
from .._messages import AssistantMessage, ModelResponse, RequestUsage, ToolCall
from .status import status_error

__all__ = [
    "REASONING_KEYS",
    "arguments_text",
    "as_mapping",
    "call_id",
    "content_parts",
    "normalize_finish_reason",
    "parse_completion",
    "parse_message",
    "parse_usage",
    "raise_error_body",
    "split_think",
]

REASONING_KEYS = ("reasoning", "reasoning_content", "reasoning_details")
_FINISH = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}
_KNOWN_TOP = frozenset({"id", "model", "choices", "usage"})
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """`value` as a JSON object, or None when it is not one."""
    if type(value) is dict:  # what the JSON parser makes: skips the slower ABC check
        return cast("dict[str, Any]", value)
    return cast("Mapping[str, Any]", value) if isinstance(value, Mapping) else None


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _int_like(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
        return int(value)
    return None


def raise_error_body(body: Mapping[str, Any], default_status: int = 500) -> NoReturn:
    """Raise the typed error of a body (or stream chunk) that has a top-level ``error``."""
    error = as_mapping(body.get("error"))
    status = None
    if error is not None:
        status = _int_like(error.get("code")) or _int_like(error.get("status_code"))
        if status is None and error.get("type") == "invalid_request_error":
            status = 400
    if status is None or not 400 <= status <= 599:
        status = default_status
    raise status_error(status, body)


def normalize_finish_reason(raw: Any) -> tuple[str | None, str | None]:
    """(normalized, raw) finish reason; ``""`` and non-strings are None."""
    if not isinstance(raw, str) or not raw:
        return None, None
    return _FINISH.get(raw), raw


def _count(mapping: Any, key: str) -> int:
    fields = as_mapping(mapping)
    return _tokens(fields.get(key)) if fields is not None else 0


def _tokens(value: Any) -> int:
    """A token count: a positive integer (or a float that is one), else 0."""
    if type(value) is int:  # the common case first (bool is not int's type)
        return value if value > 0 else 0
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, float) and 0 < value < 2**53:  # NaN and infinity fail both tests
        return int(value)
    return 0


def _is_amount(value: Any) -> bool:
    """A finite, non-negative number (JSON allows Infinity and NaN through Python's parser)."""
    if type(value) is int:
        return value >= 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value < float("inf")


def parse_usage(usage: Any, x_groq: Any = None) -> RequestUsage:
    """The usage numbers of a body or a stream.

    ``reported=False`` (and zeros) when the server sent no usage object, or one without a
    readable ``prompt_tokens`` or ``completion_tokens``: the tokens are then unknown.
    """
    fields = as_mapping(usage)
    groq = as_mapping(x_groq)
    if fields is None and groq is not None:
        fields = as_mapping(groq.get("usage"))
    if fields is None:
        return RequestUsage(reported=False)
    get = fields.get
    details = get("prompt_tokens_details")
    cached = (
        _count(details, "cached_tokens")
        or _tokens(get("cached_tokens"))
        or _tokens(get("prompt_cache_hit_tokens"))
    )
    reasoning = get("completion_tokens_details")
    cost = get("cost")
    prompt, completion = get("prompt_tokens"), get("completion_tokens")
    return RequestUsage(
        input_tokens=_tokens(prompt),
        output_tokens=_tokens(completion),
        cached_tokens=cached,
        reasoning_tokens=_count(reasoning, "reasoning_tokens"),
        cost=float(cast(float, cost)) if _is_amount(cost) else None,
        reported=_is_amount(prompt) or _is_amount(completion),
    )


def content_parts(parts: Sequence[Any]) -> tuple[list[str], list[str]]:
    """(text pieces, thinking pieces) of a list of typed content parts."""
    texts: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            raise ProtocolError(f"a content part is not an object: {_short(part)}")
        kind = part.get("type", "text")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind == "text" and isinstance(part.get("text"), str):  # pyright: ignore[reportUnknownMemberType]
            texts.append(part["text"])  # pyright: ignore[reportUnknownArgumentType]
        elif kind == "thinking":
            inner = part.get("thinking")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking.extend(content_parts(inner)[0])  # pyright: ignore[reportUnknownArgumentType]
    return texts, thinking


def split_think(text: str) -> tuple[str | None, str | None]:
    """(content, think) of a content that may open with a ``<think>`` block."""
    stripped = text.lstrip()
    if not stripped.startswith(_THINK_OPEN):
        return text or None, None
    end = stripped.find(_THINK_CLOSE, len(_THINK_OPEN))
    if end < 0:
        return None, stripped[len(_THINK_OPEN) :].strip() or None
    think = stripped[len(_THINK_OPEN) : end].strip()
    return stripped[end + len(_THINK_CLOSE) :].lstrip() or None, think or None


def call_id(raw: Any, response_id: str | None, position: int, used: set[str]) -> str:
    """The id a tool call enters the history with: the server's, or a made one; unique."""
    if isinstance(raw, str) and raw:
        base = raw
    elif response_id:
        digest = hashlib.blake2s(f"{response_id}\0{position}".encode(), digest_size=12)
        base = f"call_{digest.hexdigest()}"
    else:
        base = f"call_{uuid.uuid4().hex[:24]}"
    unique, n = base, 1
    while unique in used:
        n += 1
        unique = f"{base}_{n}"
    used.add(unique)
    return unique


def arguments_text(raw: Any) -> str:
    """A call's raw arguments text; missing, null or empty is ``"{}"``."""
    if raw is None or raw == "":
        return "{}"
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping | list):
        return json.dumps(raw, ensure_ascii=False)
    raise ProtocolError(f"tool call arguments are neither text nor JSON: {_short(raw)}")


def _function_of(call: Any) -> Mapping[str, Any]:
    if not isinstance(call, Mapping):
        raise ProtocolError(f"a tool call is not an object: {_short(call)}")
    for key in ("function", "custom"):
        fn = call.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str) and fn.get("name"):  # pyright: ignore[reportUnknownMemberType]
            if key == "custom":
                return {"name": fn["name"], "arguments": fn.get("input")}  # pyright: ignore[reportUnknownMemberType]
            return fn  # pyright: ignore[reportUnknownVariableType]
    raise ProtocolError(f"a tool call has no function name: {_short(call)}")


def _tool_calls(message: Mapping[str, Any], response_id: str | None) -> tuple[ToolCall, ...]:
    raw: Any = message.get("tool_calls")
    if raw is None or raw == []:
        legacy = as_mapping(message.get("function_call"))
        if legacy is not None and legacy.get("name"):
            raw = [{"function": legacy}]
        else:
            return ()
    if not isinstance(raw, list):
        raise ProtocolError(f"message.tool_calls is not a list: {_short(raw)}")
    used: set[str] = set()
    calls: list[ToolCall] = []
    for position, call in enumerate(raw):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        fn = _function_of(call)
        ident = call_id(call.get("id"), response_id, position, used)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        calls.append(ToolCall(ident, fn["name"], arguments_text(fn.get("arguments"))))
    return tuple(calls)


def _reasoning(message: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in REASONING_KEYS:
        value = message.get(key)
        if value is not None and value != "" and value != []:
            found[key] = value
    return found


def parse_message(message: Mapping[str, Any], response_id: str | None) -> AssistantMessage:
    """The `AssistantMessage` of a wire message (a body's, or one a stream accumulated)."""
    reasoning = _reasoning(message)
    content = message.get("content")
    if isinstance(content, list):
        texts, thinking = content_parts(content)  # pyright: ignore[reportUnknownArgumentType]
        content = "".join(texts)
        if thinking:
            reasoning["thinking"] = "".join(thinking)
    elif content is not None and not isinstance(content, str):
        raise ProtocolError(f"message.content is neither text nor parts: {_short(content)}")
    text, think = split_think(content) if content else (None, None)
    if think:
        reasoning["think"] = think
    refusal = message.get("refusal")
    return AssistantMessage(
        content=text,
        tool_calls=_tool_calls(message, response_id),
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        reasoning=reasoning,
    )


def _choice(choices: list[Any]) -> Mapping[str, Any]:
    for choice in choices:
        fields = as_mapping(choice)
        if fields is not None and fields.get("index") == 0:
            return fields
    chosen = as_mapping(choices[0])
    if chosen is None:
        raise ProtocolError(f"choices[0] is not an object: {_short(choices[0])}")
    return chosen


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_completion(body: Any) -> ModelResponse:
    """The `ModelResponse` of a parsed JSON chat-completions body."""
    fields = as_mapping(body)
    if fields is None:
        raise ProtocolError(f"the response body is not a JSON object: {_short(body)}")
    if fields.get("error") is not None:
        raise_error_body(fields)
    choices = fields.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ProtocolError(f"the response has no choices: {_short(dict(fields))}")
    choice = _choice(choices)  # pyright: ignore[reportUnknownArgumentType]
    message = as_mapping(choice.get("message"))
    if message is None:
        raise ProtocolError(f"choices[0].message is not an object: {_short(choice.get('message'))}")
    response_id = _text_or_none(fields.get("id"))
    finish, raw_finish = normalize_finish_reason(choice.get("finish_reason"))
    return ModelResponse(
        message=parse_message(message, response_id),  # pyright: ignore[reportUnknownArgumentType]
        usage=parse_usage(fields.get("usage"), fields.get("x_groq")),
        finish_reason=finish,
        raw_finish_reason=raw_finish,
        model=_text_or_none(fields.get("model")),
        id=response_id,
        extra={k: v for k, v in fields.items() if k not in _KNOWN_TOP},
    )
