"""Property tests: what the schema admits the validator accepts, and values survive the round trip
function -> schema -> JSON arguments -> parse -> call."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Any, Literal
from uuid import UUID

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter

from agentloop._context import RunContext
from agentloop._tools import InvalidArguments, Tool, tool
from agentloop._usage import Usage

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip: int = 0


@dataclasses.dataclass
class Point:
    x: float
    y: float


finite = st.floats(allow_nan=False, allow_infinity=False)
utc_datetimes = st.datetimes(timezones=st.just(dt.UTC))
ints = st.integers(min_value=-(2**53), max_value=2**53)

KINDS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "int": (int, ints),
    "float": (float, finite),
    "str": (str, st.text()),
    "bool": (bool, st.booleans()),
    "literal": (Literal["a", "b", 3], st.sampled_from(["a", "b", 3])),
    "enum": (Color, st.sampled_from(Color)),
    "list": (list[int], st.lists(ints)),
    "tuple": (tuple[int, str], st.tuples(ints, st.text())),
    "dict": (dict[str, int], st.dictionaries(st.text(), ints)),
    "date": (dt.date, st.dates()),
    "datetime": (dt.datetime, utc_datetimes),
    "uuid": (UUID, st.uuids()),
    "model": (Address, st.builds(Address, street=st.text(), zip=ints)),
    "dataclass": (Point, st.builds(Point, x=finite, y=finite)),
    "optional": (int | None, st.none() | ints),
    "union": (int | str, ints | st.text()),
    "nested_list": (
        list[Address],
        st.lists(st.builds(Address, street=st.text(), zip=ints), max_size=3),
    ),
}


def single_tool(annotation: Any) -> Tool:
    def fn(value: Any) -> Any:
        return value

    fn.__annotations__ = {"value": annotation, "return": Any}
    return tool(name="single")(fn)


TOOLS = {name: single_tool(annotation) for name, (annotation, _) in KINDS.items()}


def to_json(annotation: Any, value: Any) -> Any:
    return TypeAdapter(annotation).dump_python(value, mode="json")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_admitted_values_are_accepted_and_come_back_equal(kind: str) -> None:
    annotation, strategy = KINDS[kind]
    made = TOOLS[kind]
    loose = Draft202012Validator(dict(made.definition(False).parameters))
    strict_definition = made.definition(None)
    strict = Draft202012Validator(dict(strict_definition.parameters))

    @FAST
    @given(strategy)
    def check(value: Any) -> None:
        arguments = {"value": to_json(annotation, value)}
        loose.validate(arguments)  # the schema admits it...
        if strict_definition.strict:
            strict.validate(arguments)
        parsed = made.parse_arguments(json.dumps(arguments))  # ...and so does the validator
        assert parsed == {"value": value}
        assert type(parsed["value"]) is type(value)

    check()


def test_lossy_kinds_are_the_free_form_ones() -> None:
    assert {k for k, t in TOOLS.items() if not t.definition(None).strict} == {"dict"}


class Order(BaseModel):
    id: int
    address: Address
    note: str | None = None


def record(
    ctx: RunContext[list[dict[str, Any]]],
    count: int,
    ratio: float,
    name: str,
    color: Color,
    when: dt.datetime,
    order: Order,
    points: list[Point],
    pair: tuple[int, str],
    flag: bool = False,
    limit: int = 10,
    label: str | None = None,
) -> None:
    ctx.deps.append(
        {
            "count": count,
            "ratio": ratio,
            "name": name,
            "color": color,
            "when": when,
            "order": order,
            "points": points,
            "pair": pair,
            "flag": flag,
            "limit": limit,
            "label": label,
        }
    )


RECORD = tool(record)
orders = st.builds(
    Order,
    id=ints,
    address=st.builds(Address, street=st.text(), zip=ints),
    note=st.none() | st.text(),
)
points = st.lists(st.builds(Point, x=finite, y=finite), max_size=3)
ARGUMENTS = st.fixed_dictionaries(
    {
        "count": ints,
        "ratio": finite,
        "name": st.text(),
        "color": st.sampled_from(Color),
        "when": utc_datetimes,
        "order": orders,
        "points": points,
        "pair": st.tuples(ints, st.text()),
    },
    optional={"flag": st.booleans(), "limit": ints, "label": st.none() | st.text()},
)


def call_record(raw: str) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []
    ctx = RunContext(seen, Usage(), [])

    async def go() -> None:
        await RECORD.call(RECORD.parse_arguments(raw), ctx)

    anyio.run(go)
    assert len(seen) == 1
    return seen[0]


def dump(values: dict[str, Any]) -> str:
    return json.dumps(TypeAdapter(dict[str, Any]).dump_python(values, mode="json"))


@FAST
@given(ARGUMENTS)
def test_round_trip_gives_the_function_the_right_python_values(values: dict[str, Any]) -> None:
    raw = dump(values)
    Draft202012Validator(dict(RECORD.parameters)).validate(json.loads(raw))
    got = call_record(raw)
    expected = {"flag": False, "limit": 10, "label": None, **values}
    assert got == expected
    assert type(got["order"]) is Order
    assert type(got["order"].address) is Address
    assert all(type(p) is Point for p in got["points"])
    assert type(got["pair"]) is tuple
    assert type(got["when"]) is dt.datetime


@FAST
@given(ARGUMENTS, st.sets(st.sampled_from(["flag", "limit"])))
def test_strict_nulls_become_the_defaults(values: dict[str, Any], nulled: set[str]) -> None:
    full = {"flag": False, "limit": 10, "label": None, **values}
    sent = {k: (None if k in nulled else v) for k, v in full.items()}
    raw = dump(sent)
    strict = RECORD.definition(True).parameters
    Draft202012Validator(dict(strict)).validate(json.loads(raw))  # a strict model may send this
    got = call_record(raw)
    assert got == {**full, **{k: {"flag": False, "limit": 10}[k] for k in nulled}}


json_values = st.recursive(
    st.none() | st.booleans() | ints | finite | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(st.text() | json_values.map(json.dumps))
def test_any_text_is_either_accepted_or_an_invalid_arguments_signal(raw: str) -> None:
    parsed, message = parse_or_message(raw)
    if message is None:
        assert set(parsed) >= {"count", "order"}
    else:
        assert message.startswith("Invalid arguments for tool 'record': ")
        assert len(message) < 3000


def parse_or_message(raw: str) -> tuple[dict[str, Any], str | None]:
    try:
        return RECORD.parse_arguments(raw), None
    except InvalidArguments as exc:
        return {}, exc.message
