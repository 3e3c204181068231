"""Arguments a model almost got right, read as it meant them where only one reading exists.

Small models write Python-literal arguments (``{'city': 'Oslo', 'days': 3,}``, ``True``, ``None``)
and send numbers and booleans as strings (``"5"`` for an integer). Both are mistakes of form,
not of meaning: the repair here accepts exactly what has one reading, and leaves everything
else to the validator's error message and a re-ask.

- `near_json`: text that is not JSON but is a Python literal of JSON values once ``true``,
  ``false`` and ``null`` are read as Python's (single quotes, trailing commas, ``True``). Never
  evaluated: `ast.literal_eval` reads literals only.
- `lax_value`: the value a JSON-schema ``type`` takes in Pydantic's lax mode, for the cases that
  are unambiguous: an integer in a string (``"5"``), a number in a string (``"2.5"``), a float
  with no fraction for an integer (``5.0``), ``"true"`` / ``"false"`` for a boolean.
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from collections.abc import Sequence
from typing import Any, cast

__all__ = ["lax_value", "near_json"]

_MAX_REPAIR = 100_000  # characters: longer text is not worth repairing
_JSON_NAMES = {"true": "True", "false": "False", "null": "None"}
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {"true": True, "false": False}
_NONE = object()  # no reading (None is a value)


def near_json(raw: str) -> dict[str, Any] | None:
    """The object `raw` means when it is a Python literal of JSON values, else None."""
    text = raw.strip()
    if len(text) > _MAX_REPAIR or not text.startswith("{"):
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        names = [
            (t.type, _JSON_NAMES.get(t.string, t.string) if t.type == tokenize.NAME else t.string)
            for t in tokens
        ]
        value: Any = ast.literal_eval(tokenize.untokenize(names))
    except (tokenize.TokenError, SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict) or not _is_json(value):
        return None
    return cast(dict[str, Any], value)


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, dict):
        items = cast(dict[Any, Any], value)
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in items.items())
    if isinstance(value, list):
        elements = cast(list[Any], value)
        return all(_is_json(v, depth + 1) for v in elements)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def lax_value(value: Any, expected: str | Sequence[str]) -> tuple[bool, Any]:
    """(True, the value read as one of the `expected` JSON types) when that reading is the only
    one; (False, `value`) otherwise."""
    kinds = [expected] if isinstance(expected, str) else list(expected)
    readings = [r for r in (_as(value, kind) for kind in kinds) if r is not _NONE]
    if len(readings) != 1:
        return False, value
    return True, readings[0]


def _as(value: Any, kind: str) -> Any:
    if isinstance(value, bool):
        return _NONE  # a boolean is never read as a number, nor a number as a boolean
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer" and _INTEGER.fullmatch(text):
            return int(text)
        if kind == "number" and _NUMBER.fullmatch(text):
            number = float(text)
            return int(number) if _INTEGER.fullmatch(text) else number
        if kind == "boolean" and text.lower() in _BOOLEANS:
            return _BOOLEANS[text.lower()]
        return _NONE
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return _NONE
