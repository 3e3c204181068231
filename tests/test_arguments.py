"""Arguments as the model writes them: good ones become Python values, bad ones precise messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from support import fuzzing
from support.fuzzing import MANY, SOME, json_value, outcome, shaped, small
from typing_extensions import TypedDict

from agentloop import ToolRetry, tool
from agentloop._arguments import ArgumentProblems, load_arguments
from agentloop._context import RunContext
from agentloop._tools import InvalidArguments, Tool
from agentloop._usage import Usage


@tool
def typed_tool(name: str, count: int = 1, tags: list[str] | None = None) -> str:
    """A tool with typed parameters."""
    return name


SCHEMA_TOOL = Tool.from_schema(
    "schema_tool",
    "From a raw schema.",
    {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
     "required": ["q"]},
    lambda **kw: kw,
)  # fmt: skip


argument_text = (
    st.text(max_size=80)
    | json_value.map(json.dumps)
    | shaped(
        {
            "name": fuzzing.text,
            "count": small,
            "tags": st.lists(fuzzing.text),
            "q": fuzzing.text,
            "n": small,
        }
    ).map(json.dumps)
    | json_value.map(lambda v: json.dumps(json.dumps(v)))  # encoded twice
)


@MANY
@given(argument_text | st.none())
def test_load_arguments_raises_only_argument_problems(raw):
    value, exc = outcome(load_arguments, raw)
    if exc is not None:
        assert isinstance(exc, ArgumentProblems), repr(exc)
        assert exc.lines
        assert len(str(exc)) < 3_000
    else:
        assert isinstance(value, dict)


@MANY
@given(argument_text)
def test_tool_arguments_give_values_or_an_explanation(raw):
    for made in (typed_tool, SCHEMA_TOOL):
        arguments, signal = outcome(made.parse_arguments, raw)
        if signal is not None:
            assert isinstance(signal, ToolRetry), repr(signal)
            assert signal.message.startswith(f"Invalid arguments for tool {made.name!r}")
            assert len(signal.message) < 3_000
        else:
            assert isinstance(arguments, dict)


@SOME
@given(st.integers(1, 3000))
def test_deeply_nested_arguments_are_explained_not_crashed(depth):
    raw = "[" * depth + "]" * depth
    nested = '{"name": ' + raw + "}"
    for text in (raw, nested, '{"a": ' * depth):  # none of them is acceptable
        with pytest.raises(ToolRetry):
            typed_tool.parse_arguments(text)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip: int = 0
    note: str | None = "none given"


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    meows: int


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    barks: bool


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Movie(TypedDict):
    title: str
    year: int


def everything(
    s: str = "",
    i: int = 0,
    f: float = 0.0,
    b: bool = False,
    lit: Literal["a", "b"] = "a",
    color: Color = Color.RED,
    union: int | str = 0,
    ints: list[int] = [],  # noqa: B006 - never mutated
    pair: tuple[int, str] = (0, ""),
    day: dt.date = dt.date(2000, 1, 1),
    when: dt.datetime | None = None,
    uid: UUID | None = None,
    address: Address | None = None,
    pet: Annotated[Cat | Dog, Field(discriminator="kind")] | None = None,
    n: Annotated[int, Field(ge=1, le=10)] = 1,
    code: Annotated[str, Field(max_length=3)] = "",
    counts: dict[str, int] = {},  # noqa: B006 - never mutated
    point: Point | None = None,
    movie: Movie | None = None,
) -> None:
    """Take one of everything."""


TOOL = tool(everything)


PREFIX = "Invalid arguments for tool 'everything': "


def bad(raw: str) -> str:
    with pytest.raises(InvalidArguments) as info:
        TOOL.parse_arguments(raw)
    assert info.value.tool_name == "everything"
    assert isinstance(info.value, ToolRetry)
    message = info.value.message
    assert message.startswith(PREFIX)
    return message.removeprefix(PREFIX)


def test_good_arguments_for_every_kind() -> None:
    raw = {
        "s": "x",
        "i": "7",
        "f": 2,
        "b": "true",
        "lit": "b",
        "color": "blue",
        "union": "word",
        "ints": [1, "2"],
        "pair": [1, "a"],
        "day": "2024-02-29",
        "when": "2024-02-29T10:00:00Z",
        "uid": "12345678-1234-5678-1234-567812345678",
        "address": {"street": "Main 1"},
        "pet": {"kind": "dog", "barks": True},
        "n": 10,
        "code": "abc",
        "counts": {"a": 1},
        "point": {"x": 1.5},
        "movie": {"title": "Up", "year": 2009},
    }
    got = TOOL.parse_arguments(json.dumps(raw))
    assert got == {
        "s": "x",
        "i": 7,
        "f": 2.0,
        "b": True,
        "lit": "b",
        "color": Color.BLUE,
        "union": "word",
        "ints": [1, 2],
        "pair": (1, "a"),
        "day": dt.date(2024, 2, 29),
        "when": dt.datetime(2024, 2, 29, 10, tzinfo=dt.UTC),
        "uid": UUID("12345678-1234-5678-1234-567812345678"),
        "address": Address(street="Main 1"),
        "pet": Dog(barks=True),
        "n": 10,
        "code": "abc",
        "counts": {"a": 1},
        "point": Point(1.5),
        "movie": {"title": "Up", "year": 2009},
    }
    assert type(got["address"]) is Address
    assert type(got["point"]) is Point


def test_omitted_parameters_get_their_defaults() -> None:
    got = TOOL.parse_arguments('{"s": "only"}')
    assert got["s"] == "only"
    assert got["i"] == 0
    assert got["color"] is Color.RED
    assert got["address"] is None


@pytest.mark.parametrize("raw", [None, "", "   \n", "null", " null "])
def test_empty_arguments_mean_an_empty_object(raw: str | None) -> None:
    assert TOOL.parse_arguments(raw)["s"] == ""


def test_arguments_encoded_twice_are_read() -> None:
    assert TOOL.parse_arguments(json.dumps(json.dumps({"i": 3})))["i"] == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"s": 1}', "s: Input should be a valid string (got 1)"),
        (
            '{"i": "abc"}',
            "i: Input should be a valid integer, unable to parse string as an integer (got 'abc')",
        ),
        (
            '{"i": 1.5}',
            "i: Input should be a valid integer, got a number with a fractional part (got 1.5)",
        ),
        (
            '{"f": "x"}',
            "f: Input should be a valid number, unable to parse string as a number (got 'x')",
        ),
        (
            '{"b": "maybe"}',
            "b: Input should be a valid boolean, unable to interpret input (got 'maybe')",
        ),
        ('{"lit": "c"}', "lit: Input should be 'a' or 'b' (got 'c')"),
        ('{"color": "green"}', "color: Input should be 'red' or 'blue' (got 'green')"),
        (
            '{"union": [1]}',
            "union: Input should be a valid integer (got [1]); "
            "union: Input should be a valid string (got [1])",
        ),
        (
            '{"ints": [1, "x"]}',
            "ints.1: Input should be a valid integer, "
            "unable to parse string as an integer (got 'x')",
        ),
        ('{"ints": "x"}', "ints: Input should be a valid list (got 'x')"),
        ('{"pair": [1]}', "pair.1: Field required"),
        (
            '{"day": "2024-13-01"}',
            "day: Input should be a valid date or datetime, "
            "month value is outside expected range of 1-12 (got '2024-13-01')",
        ),
        (
            '{"uid": "nope"}',
            "uid: Input should be a valid UUID, invalid character: found `n` at 0 (got 'nope')",
        ),
        (
            '{"address": {"zip": "x"}}',
            "address.street: Field required; "
            "address.zip: Input should be a valid integer, "
            "unable to parse string as an integer (got 'x')",
        ),
        (
            '{"address": "x"}',
            "address: Input should be a valid dictionary or instance of Address (got 'x')",
        ),
        ('{"pet": {"kind": "dog"}}', "pet.barks: Field required"),
        (
            '{"pet": {"kind": "cow"}}',
            "pet: Input tag 'cow' found using 'kind' does not match any of the expected tags: "
            "'cat', 'dog' (got {'kind': 'cow'})",
        ),
        ('{"n": 0}', "n: Input should be greater than or equal to 1 (got 0)"),
        ('{"n": 11}', "n: Input should be less than or equal to 10 (got 11)"),
        ('{"code": "abcd"}', "code: String should have at most 3 characters (got 'abcd')"),
        (
            '{"counts": {"a": "x"}}',
            "counts.a: Input should be a valid integer, "
            "unable to parse string as an integer (got 'x')",
        ),
        ('{"point": {"y": 1}}', "point.x: Field required"),
        ('{"movie": {"title": "Up"}}', "movie.year: Field required"),
        ('{"nope": 1}', "nope: Extra inputs are not permitted (got 1)"),
    ],
)
def test_bad_arguments_name_the_field(raw: str, expected: str) -> None:
    assert bad(raw) == expected


def test_the_example_from_the_brief() -> None:
    @tool
    def get_weather(city: str, days: int = 1) -> str:
        return city

    with pytest.raises(InvalidArguments) as info:
        get_weather.parse_arguments('{"days": "abc"}')
    assert info.value.message == (
        "Invalid arguments for tool 'get_weather': city: Field required; "
        "days: Input should be a valid integer, unable to parse string as an integer (got 'abc')"
    )
    assert info.value.problems == [
        "city: Field required",
        "days: Input should be a valid integer, unable to parse string as an integer (got 'abc')",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"s": "a" "i": 1}',
            "the arguments are not valid JSON: Expecting ',' delimiter at line 1, column 11 "
            """(position 10), near '{"s": "a" "i": 1}'""",
        ),
        (
            "{'s': 'a', 'i': [1, 2}",
            "the arguments are not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1, column 2 (position 1), near \"{'s': 'a', 'i': [1, 2}\"",
        ),
        (
            '{"s": "unterminated',
            "the arguments are not valid JSON: Unterminated string starting at line 1, column 7 "
            """(position 6), near '{"s": "unterminated'""",
        ),
        (
            '{"s": 1}\n{"i": 2}',
            "the arguments are not valid JSON: Extra data at line 2, column 1 (position 9), "
            """near '{"s": 1}\\n{"i": 2}'""",
        ),
    ],
)
def test_invalid_json_says_where(raw: str, expected: str) -> None:
    assert bad(raw) == expected


def test_invalid_json_echo_is_bounded() -> None:
    raw = '{"s": "' + "x" * 5000 + '" "i": 1}'
    message = bad(raw)
    assert message == (
        "the arguments are not valid JSON: Expecting ',' delimiter at line 1, column 5010 "
        """(position 5009), near 'xxxxxxxxxxxxxxxxxxxxxxxxxxxx" "i": 1}'"""
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[1, 2]", "the arguments must be a JSON object of named parameters, got an array: [1, 2]"),
        ('"text"', "the arguments must be a JSON object of named parameters, got a string: 'text'"),
        ("42", "the arguments must be a JSON object of named parameters, got a number: 42"),
        ("true", "the arguments must be a JSON object of named parameters, got a boolean: True"),
    ],
)
def test_a_json_value_that_is_not_an_object(raw: str, expected: str) -> None:
    assert bad(raw) == expected


def test_echoed_input_is_truncated() -> None:
    message = bad(json.dumps({"i": "9" * 1000 + "x"}))
    assert message == (
        "i: Input should be a valid integer, unable to parse string as an integer (got '"
        + "9" * 78
        + "…)"
    )


def test_the_number_of_problems_is_bounded() -> None:
    message = bad(json.dumps({f"x{k}": 1 for k in range(20)}))
    assert message.count("Extra inputs are not permitted") == 8
    assert message.endswith("; and 12 more problems")


@pytest.mark.anyio
async def test_a_tool_never_runs_on_invalid_arguments() -> None:
    calls: list[int] = []

    @tool
    def record(n: int) -> None:
        calls.append(n)

    async def dispatch(raw: str) -> None:
        await record.call(record.parse_arguments(raw), RunContext(None, Usage(), []))

    with pytest.raises(InvalidArguments):
        await dispatch('{"n": "x"}')
    await dispatch('{"n": 1}')
    assert calls == [1]


def test_null_for_a_non_nullable_optional_parameter_gets_the_default() -> None:
    got = TOOL.parse_arguments('{"i": null, "color": null, "ints": null, "n": null}')
    assert (got["i"], got["color"], got["ints"], got["n"]) == (0, Color.RED, [], 1)


def test_null_for_a_nullable_parameter_means_none() -> None:
    @tool
    def f(x: int | None = 5) -> None: ...

    assert f.parse_arguments('{"x": null}') == {"x": None}
    assert f.parse_arguments("{}") == {"x": 5}


def test_null_for_a_required_parameter_is_an_error() -> None:
    @tool
    def f(x: int) -> None: ...

    with pytest.raises(InvalidArguments, match=r"x: Input should be a valid integer \(got None\)"):
        f.parse_arguments('{"x": null}')


def test_null_to_default_in_nested_models() -> None:
    got = TOOL.parse_arguments('{"address": {"street": "s", "zip": null, "note": null}}')
    assert got["address"] == Address(street="s", zip=0, note=None)
    got = TOOL.parse_arguments('{"point": {"x": 1, "y": null}}')
    assert got["point"] == Point(1.0, 0.0)


def test_null_to_default_inside_lists_and_tagged_unions() -> None:
    class Item(BaseModel):
        name: str
        qty: int = 1

    @tool
    def f(items: list[Item], pet: Annotated[Cat | Dog, Field(discriminator="kind")]) -> None: ...

    got = f.parse_arguments(
        '{"items": [{"name": "a", "qty": null}], "pet": {"kind": "cat", "meows": 2}}'
    )
    assert got == {"items": [Item(name="a", qty=1)], "pet": Cat(meows=2)}


def test_null_to_default_with_a_default_factory() -> None:
    class Box(BaseModel):
        tags: list[str] = Field(default_factory=lambda: ["new"])

    @tool
    def f(box: Box) -> None: ...

    assert f.parse_arguments('{"box": {"tags": null}}') == {"box": Box(tags=["new"])}


def test_strict_definition_and_null_default_agree() -> None:
    @tool
    def f(a: str, b: int = 4) -> None: ...

    strict = f.definition(True).parameters
    assert strict["required"] == ["a", "b"]
    assert strict["properties"]["b"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert f.parse_arguments('{"a": "x", "b": null}') == {"a": "x", "b": 4}


def test_raw_schema_null_to_default_nested() -> None:
    schema = {
        "type": "object",
        "properties": {
            "opts": {
                "type": "object",
                "properties": {
                    "depth": {"type": "integer", "default": 2},
                    "label": {"type": ["string", "null"]},
                },
            }
        },
        "required": ["opts"],
    }
    made = Tool.from_schema("t", "", schema, lambda opts: opts)
    assert made.parse_arguments('{"opts": {"depth": null, "label": null}}') == {
        "opts": {"label": None}
    }
    with pytest.raises(
        InvalidArguments, match=r"opts: Input should be of type object \(got None\)"
    ):
        made.parse_arguments('{"opts": null}')


def test_raw_schema_messages_for_nested_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "required": ["n"],
                },
            }
        },
        "required": ["items"],
    }
    made = Tool.from_schema("t", "", schema, lambda items: items)
    with pytest.raises(InvalidArguments) as info:
        made.parse_arguments('{"items": [{"n": 1}, {}, {"n": "x"}]}')
    assert info.value.problems == [
        "items.1.n: Field required",
        "items.2.n: Input should be of type integer (got 'x')",
    ]


def test_tool_arguments_keep_any_type() -> None:
    @tool
    def f(data: dict[str, Any]) -> None: ...

    assert f.parse_arguments('{"data": {"a": [1, {"b": null}]}}') == {
        "data": {"a": [1, {"b": None}]}
    }
