"""A cassette's file: its JSON layout, what is scrubbed before anything is written, and the diff
shown when a request matches nothing recorded.

The file is pretty-printed JSON, one object per exchange, in the order the requests were sent::

    {
      "agentloop_cassette": 1,
      "exchanges": [
        {
          "request": {"method": "POST", "url": "http://127.0.0.1:8080/v1/chat/completions",
                      "body": {"model": "m", "messages": [...]}},
          "response": {"status": 200, "headers": {"content-type": "application/json"},
                       "body": "{\\"id\\": \\"chatcmpl-1\\", ...}"}
        },
        {
          "request": {...},
          "response": {"status": 200, "headers": {"content-type": "text/event-stream"},
                       "chunks": ["data: {...}\\n\\n", "data: [DONE]\\n\\n"]}
        }
      ]
    }

A response's body is kept as the text the server sent (``body``), or as the pieces the client
read one by one (``chunks``, an event stream: its bytes and where they were cut); bytes that
are not UTF-8 are kept as ``{"base64": "..."}`` instead of a string. A request's body is kept as
JSON (it is compared as JSON). An exchange whose connection failed has an ``error`` instead of
(or after part of) its ``response``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "FORMAT_VERSION",
    "decode_piece",
    "describe",
    "diff",
    "encode_piece",
    "kept_headers",
    "request_body",
    "scrub_bytes",
    "scrub_text",
    "secrets_of",
]

FORMAT_VERSION = 1
SECRET_HEADERS = frozenset(
    ("authorization", "api-key", "x-api-key", "cookie", "openai-organization", "openai-project")
)
"""Request headers whose values are secrets: never written, and scrubbed wherever they appear."""
_SECRET_PARAMS = frozenset(("key", "api_key", "api-key", "apikey", "access_token", "token"))
_KEPT_HEADERS = frozenset(
    ("content-type", "retry-after", "retry-after-ms", "x-should-retry", "location")
)
_KEPT_PATTERN = re.compile(r"^(x-ratelimit-.*|(x-)?request-id|openai-processing-ms)$")
_MIN_SECRET = 6
"""Shorter values are not taken for secrets (scrubbing them would mangle ordinary text)."""
_MAX_DIFFS = 6
_MAX_VALUE = 80


def secrets_of(url: str, headers: Mapping[str, str]) -> set[str]:
    """The secrets a request carries: its key headers' values (and the token after an auth
    scheme such as ``Bearer``) and the values of key-like query parameters."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            found.add(value)
            found.update(value.split()[1:])
    for name, value in parse_qsl(urlsplit(url).query):
        if name.lower() in _SECRET_PARAMS:
            found.add(value)
    return {secret for secret in found if len(secret) >= _MIN_SECRET}


def _longest_first(secrets: Iterable[str]) -> list[str]:
    return sorted(secrets, key=len, reverse=True)  # "Bearer sk-1" before "sk-1"


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    for secret in _longest_first(secrets):
        text = text.replace(secret, "***")
    return text


def scrub_bytes(raw: bytes, secrets: Iterable[str]) -> bytes:
    for secret in _longest_first(secrets):
        raw = raw.replace(secret.encode(), b"***")
    return raw


def kept_headers(headers: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """The response headers worth keeping (what agentloop reads, rate limits, request ids),
    names lower-cased, secrets taken out; cookies and the rest are dropped."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _KEPT_HEADERS or _KEPT_PATTERN.match(lowered):
            kept[lowered] = scrub_text(value, secrets)
    return kept


def request_body(raw: bytes, secrets: Iterable[str]) -> Any:
    """A request body as kept and compared: its JSON, else its text (secrets taken out)."""
    text = scrub_text(raw.decode("utf-8", "replace"), secrets)
    try:
        return json.loads(text)
    except ValueError:
        return text


def encode_piece(raw: bytes) -> str | dict[str, str]:
    """Bytes as text when they are UTF-8, else as ``{"base64": ...}``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def decode_piece(piece: Any) -> bytes:
    if isinstance(piece, str):
        return piece.encode("utf-8")
    if isinstance(piece, Mapping):
        encoded = cast("Mapping[str, Any]", piece).get("base64")
        if isinstance(encoded, str):
            return base64.b64decode(encoded)
    raise ValueError(f"not a body piece: {piece!r:.60}")


def describe(method: str, url: str) -> str:
    """``POST /v1/chat/completions``: a request as errors name it."""
    return f"{method} {urlsplit(url).path}"


def diff(recorded: Any, sent: Any) -> list[str]:
    """What differs between two JSON values, one line per difference (at most a few)."""
    lines: list[str] = []
    _diff(recorded, sent, "body", lines)
    if len(lines) > _MAX_DIFFS:
        lines[_MAX_DIFFS:] = [f"... and {len(lines) - _MAX_DIFFS} more differences"]
    return lines


def _diff(recorded: Any, sent: Any, where: str, lines: list[str]) -> None:
    if len(lines) > _MAX_DIFFS:
        return
    if isinstance(recorded, Mapping) and isinstance(sent, Mapping):
        old, new = cast("Mapping[str, Any]", recorded), cast("Mapping[str, Any]", sent)
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(old.get(key, _MISSING), new.get(key, _MISSING), f"{where}.{key}", lines)
        return
    if isinstance(recorded, list) and isinstance(sent, list):
        old_items, new_items = cast("list[Any]", recorded), cast("list[Any]", sent)
        for index in range(max(len(old_items), len(new_items))):
            old_item = old_items[index] if index < len(old_items) else _MISSING
            new_item = new_items[index] if index < len(new_items) else _MISSING
            _diff(old_item, new_item, f"{where}[{index}]", lines)
        return
    if not _same(cast("object", recorded), cast("object", sent)):
        lines.append(f"{where}: recorded {_short(recorded)}, sent {_short(sent)}")


def _same(recorded: object, sent: object) -> bool:
    return recorded == sent and type(recorded) is type(sent)  # 1 and True and 1.0 differ


class _Missing:
    def __repr__(self) -> str:
        return "(nothing)"


_MISSING: Any = _Missing()


def _short(value: Any) -> str:
    text = value if isinstance(value, _Missing) else json.dumps(value, ensure_ascii=False)
    text = str(text)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
