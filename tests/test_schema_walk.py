"""Schema walking: title keywords cleaned, null admitted."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop._schema_walk import admits_null, clean_schema


def test_clean_schema_drops_title_keywords_but_not_properties_named_title() -> None:
    schema = {
        "title": "Book",
        "type": "object",
        "properties": {"title": {"title": "Title", "type": "string"}},
        "$defs": {"X": {"title": "X", "type": "integer"}},
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "$defs": {"X": {"type": "integer"}},
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer"}, False),
        ({"type": ["integer", "null"]}, True),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, True),
        ({"$ref": "#/$defs/N"}, True),
        ({"enum": ["a", None]}, True),
        ({"const": 1}, False),
        ({}, True),
    ],
)
def test_admits_null(schema: dict[str, Any], expected: bool) -> None:
    root = {"$defs": {"N": {"type": "null"}}}
    assert admits_null(schema, root) is expected
