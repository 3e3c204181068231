"""Schema limits: depth, properties, enum values, string length, tool count."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop._errors import SchemaError
from agentloop._schema import to_strict
from agentloop._schema_limits import check_tool_count


def _chain(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "object",
        "properties": {"leaf": {"type": "string"}},
        "required": ["leaf"],
    }
    for _ in range(levels - 1):
        node = {"type": "object", "properties": {"child": node}, "required": ["child"]}
    return node


def test_depth_limit() -> None:
    to_strict(_chain(10))
    with pytest.raises(
        SchemaError, match="nests objects 11 levels deep; strict mode allows at most 10"
    ):
        to_strict(_chain(11))


def test_depth_follows_refs_but_not_recursion() -> None:
    defs = {
        f"L{i}": {
            "type": "object",
            "properties": {"n": {"$ref": f"#/$defs/L{i + 1}"}},
            "required": ["n"],
        }
        for i in range(11)
    }
    defs["L11"] = {"type": "object", "properties": {"n": {"$ref": "#/$defs/L0"}}, "required": ["n"]}
    schema = {
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/L0"}},
        "required": ["n"],
        "$defs": defs,
    }
    with pytest.raises(SchemaError, match="13 levels deep"):
        to_strict(schema)


def _wide(count: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f"p{i}": {"type": "integer"} for i in range(count)},
        "required": [],
    }


def test_property_limit() -> None:
    to_strict(_wide(5000))
    with pytest.raises(
        SchemaError, match="5,001 properties in total; strict mode allows at most 5,000"
    ):
        to_strict(_wide(5001))


def _enums(values: list[Any]) -> dict[str, Any]:
    half = len(values) // 2
    return {
        "type": "object",
        "properties": {"a": {"enum": values[:half]}, "b": {"enum": values[half:]}},
        "required": ["a", "b"],
    }


def test_enum_value_limit_counts_all_enums() -> None:
    to_strict(_enums(list(range(1000))))
    with pytest.raises(
        SchemaError, match="1,001 enum values in total; strict mode allows at most 1,000"
    ):
        to_strict(_enums(list(range(1001))))


def test_string_length_limit() -> None:
    # property names "a" and "b" take 2 characters; the enum values take the rest
    values = ["x" * 1000] * 119 + ["y" * 998]
    to_strict(_enums(values))  # exactly 120,000
    too_long = _enums([*values[:-1], "y" * 999])
    with pytest.raises(
        SchemaError, match="120,001 characters in total; strict mode allows at most 120,000"
    ):
        to_strict(too_long)


def test_tool_count_limit() -> None:
    check_tool_count(128)
    with pytest.raises(SchemaError, match="129 tools in one request; the API takes at most 128"):
        check_tool_count(129)
