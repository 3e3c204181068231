"""Arguments with one reading are read so: Python-literal objects, lax values for raw schemas."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop import Tool, ToolRetry
from agentloop._argument_repair import lax_value, near_json
from agentloop._arguments import load_arguments


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{'city': 'Oslo'}", {"city": "Oslo"}),
        ('{"days": 3, "units": [1, 2,],}', {"days": 3, "units": [1, 2]}),
        (
            "{'hot': True, 'cold': false, 'note': None, 'x': null}",
            {
                "hot": True,
                "cold": False,
                "note": None,
                "x": None,
            },
        ),
        ("  {'nested': {'a': 'it''s'}}  ", {"nested": {"a": "its"}}),
    ],
)
def test_python_literal_objects_are_read(raw: str, expected: dict[str, Any]) -> None:
    assert near_json(raw) == expected
    assert load_arguments(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "{1: 2}",  # a key that is not a string
        "{'a': __import__('os').getcwd()}",  # never evaluated
        "{'a': {1, 2}}",  # a set is not JSON
        "{'a': 1e999}",  # not a finite number
        "{'a': b'x'}",
        "['a', 'b']",  # not an object
        "{'a': 1",
        "{" * 5_000,
    ],
)
def test_what_is_not_a_json_literal_stays_an_error(raw: str) -> None:
    assert near_json(raw) is None


@pytest.mark.parametrize(
    ("value", "expected", "reading"),
    [
        ("5", "integer", 5),
        (" -12 ", "integer", -12),
        (5.0, "integer", 5),
        ("2.5", "number", 2.5),
        ("3", "number", 3),
        ("1e3", "number", 1000.0),
        ("true", "boolean", True),
        ("False", "boolean", False),
        ("5", ["integer", "null"], 5),
    ],
)
def test_unambiguous_lax_values(value: Any, expected: Any, reading: Any) -> None:
    ok, read = lax_value(value, expected)
    assert ok and read == reading and type(read) is type(reading)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5.5", "integer"),
        (5.5, "integer"),
        (True, "integer"),  # a boolean is never a number
        (1, "boolean"),
        ("yes", "boolean"),
        ("five", "integer"),
        ("5", ["integer", "number"]),  # two readings: 5 and 5.0 are both fine, but not one
        ([5], "integer"),
    ],
)
def test_ambiguous_or_impossible_values_are_not_read(value: Any, expected: Any) -> None:
    assert lax_value(value, expected) == (False, value)


SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "integer"}},
        "name": {"type": "string"},
    },
    "required": ["n"],
    "additionalProperties": False,
}


def _pick(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def _tool() -> Tool:
    return Tool.from_schema("pick", "Pick.", SCHEMA, _pick)


def test_raw_schema_tools_read_lax_values_then_validate() -> None:
    raw = '{"n": "5", "ratio": "0.5", "flag": "true", "items": ["1", 2.0], "name": "x"}'
    arguments = _tool().parse_arguments(raw)
    assert arguments == {"n": 5, "ratio": 0.5, "flag": True, "items": [1, 2], "name": "x"}


def test_a_value_with_no_single_reading_is_reported_as_it_came() -> None:
    with pytest.raises(ToolRetry) as caught:
        _tool().parse_arguments('{"n": "5", "flag": "maybe"}')
    assert "flag: Input should be of type boolean (got 'maybe')" in caught.value.message
    assert "(got '5')" not in caught.value.message  # the readable one is not blamed


def test_a_string_is_never_made_a_number_where_a_string_is_wanted() -> None:
    assert _tool().parse_arguments('{"n": 1, "name": "5"}') == {"n": 1, "name": "5"}
