"""Partial structured output: the value so far, from the JSON text so far, in linear total work.

The JSON is re-parsed with pydantic-core's partial parser (incomplete trailing strings dropped),
but only when the text has grown by a fixed fraction since the last parse, so the total work for
an output of n characters stays O(n) however it is chunked. The value is validated against a
"partial" version of the output type in which every field is optional, so it holds exactly the
fields complete so far. A number at the very end of the text is left out until something follows
it (``12`` may still become ``123``). Dataclasses and TypedDicts get partial versions too (a model
and a non-total TypedDict).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, Union, cast, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, create_model
from typing_extensions import TypedDict, is_typeddict

__all__ = ["PartialParser"]

_GROWTH = 8  # re-parse when the text grew by 1/8th of its length (geometric: linear in total)
_MIN_STEP = 32
_NUMBER_CHARS = "0123456789.eE+-"


class PartialParser:
    """Feed text fragments; `value()` gives the partial output when it is worth re-parsing."""

    __slots__ = ("_adapter", "_chunks", "_last", "_length", "_parsed_at", "_unwrap")

    def __init__(self, output_type: Any, *, wrapped: bool) -> None:
        self._adapter = _partial_adapter(output_type)
        self._unwrap = wrapped
        self._chunks: list[str] = []
        self._length = 0
        self._parsed_at = 0
        self._last: Any = None

    def feed(self, text: str) -> Any | None:
        """Add `text`; return a new partial value, or None when nothing new is worth emitting."""
        self._chunks.append(text)
        self._length += len(text)
        step = max(_MIN_STEP, self._parsed_at // _GROWTH)
        if self._length - self._parsed_at < step:
            return None
        return self._parse(final=False)

    def flush(self) -> Any | None:
        """The value of all the text fed, when it differs from the last one returned."""
        if not self._length:
            return None
        return self._parse(final=True)

    def _parse(self, *, final: bool) -> Any | None:
        from pydantic_core import from_json

        text = "".join(self._chunks)
        self._chunks = [text]
        self._parsed_at = self._length
        body = text.strip().removeprefix("```json").removesuffix("```").strip()
        if not final:  # a trailing number may still grow: leave it out
            body = body.rstrip(_NUMBER_CHARS)
        try:
            raw: Any = from_json(body or "{}", allow_partial=True)
            if self._unwrap:
                raw = cast(dict[str, Any], raw).get("result") if isinstance(raw, dict) else None
                if raw is None:
                    return None
            value = self._adapter.validate_python(raw, experimental_allow_partial=True)
        except ValueError:  # pydantic's ValidationError and JSON errors are ValueErrors
            return None
        if value == self._last:
            return None
        self._last = value
        return value


@cache
def _partial_adapter(output_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(_partial_type(output_type))


def _partial_type(tp: Any) -> Any:  # pyright: ignore[reportUnknownParameterType]
    """`tp` with every model field optional (default None), recursively through containers."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _partial_model(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _partial_dataclass(tp)
    if is_typeddict(cast(Any, tp)):
        return _partial_typeddict(cast(Any, tp))
    if isinstance(tp, dict):  # a raw JSON schema: the parsed JSON is the value
        return Any
    origin: Any = get_origin(tp)
    args: tuple[Any, ...] = get_args(tp)
    if origin is None or not args:
        return cast(Any, tp)
    if origin is typing.Annotated:
        return _partial_type(args[0])
    partial_args = tuple(_partial_type(a) for a in args)
    if origin in (Union, types.UnionType):
        return Union[partial_args]  # noqa: UP007 - built from a tuple
    if origin is typing.Literal:
        return cast(Any, tp)
    try:
        return origin[partial_args]
    except TypeError:
        return cast(Any, tp)


@cache
def _partial_model(model: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (_partial_type(info.annotation) | None, None)
        for name, info in model.model_fields.items()
    }
    return create_model(f"Partial{model.__name__}", **fields)


@cache
def _partial_dataclass(cls: type[Any]) -> type[BaseModel]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {
        f.name: (_partial_type(hints[f.name]) | None, None) for f in dataclasses.fields(cls)
    }
    return create_model(f"Partial{cls.__name__}", **fields)


@cache
def _partial_typeddict(cls: Any) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {name: _partial_type(hint) | None for name, hint in hints.items()}
    return TypedDict(f"Partial{cls.__name__}", fields, total=False)  # type: ignore[misc]
