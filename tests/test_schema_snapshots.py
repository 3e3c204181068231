"""Schema snapshots for a matrix of tool signatures: the strict and non-strict definitions.

Each case's definitions live in ``tests/snapshots/schemas/<case>.json``. Run with
``AGENTLOOP_UPDATE_SNAPSHOTS=1`` to rewrite them after a deliberate change, then review the diff.
Every schema must be valid JSON Schema, and every strict one must lie inside the strict subset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field
from test_schema import strict_subset_violations
from typing_extensions import TypedDict

from agentloop._context import RunContext
from agentloop._errors import UsageError
from agentloop._tools import Tool, tool

SNAPSHOTS = Path(__file__).parent / "snapshots" / "schemas"
UPDATE = os.environ.get("AGENTLOOP_UPDATE_SNAPSHOTS") == "1"


class Color(enum.Enum):
    """A paint color."""

    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    """A postal address."""

    street: str = Field(description="Street and number.")
    city: str
    zip: str | None = None


class Customer(BaseModel):
    name: str
    address: Address


class Order(BaseModel):
    """An order."""

    id: int
    customer: Customer
    lines: list[OrderLine] = []


class OrderLine(BaseModel):
    sku: str
    quantity: Annotated[int, Field(ge=1)] = 1
    color: Color = Color.RED


Order.model_rebuild()


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    meows: int


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    barks: bool


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Comment(BaseModel):
    text: str
    reply: Comment | None = None


class Settings(BaseModel):
    verbose: bool = False
    retries: int = 3
    tags: list[str] = Field(default_factory=list)
    address: Address | None = None


@dataclasses.dataclass
class Point:
    """A point on a plane."""

    x: float
    y: float
    label: str = ""


class Movie(TypedDict):
    title: str
    year: int
    rating: NotRequired[float]


class PartialMovie(TypedDict, total=False):
    title: str
    year: int


def no_params() -> str:
    """Take no arguments."""
    return ""


def one_str(city: str) -> str:
    return city


def primitives(s: str, i: int, f: float, b: bool) -> str:
    return ""


def with_defaults(s: str = "x", i: int = 3, f: float = 1.5, b: bool = False) -> str:
    return ""


def optional_none(x: int | None = None) -> str:
    return ""


def optional_required(x: int | None) -> str:
    return ""


def literal_str(mode: Literal["fast", "slow"]) -> str:
    return mode


def literal_mixed(value: Literal[1, "a", True]) -> str:
    return ""


def literal_single(kind: Literal["only"]) -> str:
    return kind


def literal_default(mode: Literal["a", "b"] = "a") -> str:
    return mode


def enum_str(color: Color) -> str:
    return ""


def enum_int(level: Level) -> str:
    return ""


def enum_default(color: Color = Color.RED) -> str:
    return ""


def union_primitives(value: int | str) -> str:
    return ""


def union_models(pet: Cat | Dog) -> str:
    return ""


def discriminated(pet: Annotated[Cat | Dog, Field(discriminator="kind")]) -> str:
    return ""


def list_str(tags: list[str]) -> str:
    return ""


def list_models(lines: list[OrderLine]) -> str:
    return ""


def list_of_lists(grid: list[list[int]]) -> str:
    return ""


def list_of_unions(values: list[int | str]) -> str:
    return ""


def nullable_list(values: list[int] | None = None) -> str:
    return ""


def set_int(ids: set[int]) -> str:
    return ""


def tuple_fixed(point: tuple[int, int]) -> str:
    return ""


def tuple_mixed(pair: tuple[str, float]) -> str:
    return ""


def tuple_variadic(values: tuple[int, ...]) -> str:
    return ""


def dict_str_int(counts: dict[str, int]) -> str:
    return ""


def dict_any(data: dict[str, Any]) -> str:
    return ""


def dict_of_models(book: dict[str, Address]) -> str:
    return ""


def any_param(value: Any) -> str:
    return ""


def datetime_param(when: dt.datetime) -> str:
    return ""


def date_param(day: dt.date) -> str:
    return ""


def time_param(at: dt.time) -> str:
    return ""


def timedelta_param(duration: dt.timedelta) -> str:
    return ""


def uuid_param(id: UUID) -> str:
    return ""


def decimal_param(amount: Decimal) -> str:
    return ""


def bytes_param(data: bytes) -> str:
    return ""


def nested_model(address: Address) -> str:
    return ""


def nested_optional_model(address: Address | None = None) -> str:
    return ""


def deep_nested(order: Order) -> str:
    return ""


def recursive(tree: Node) -> str:
    return ""


def recursive_optional(comment: Comment) -> str:
    return ""


def model_with_defaults(settings: Settings) -> str:
    return ""


def dataclass_param(point: Point) -> str:
    return ""


def typeddict_param(movie: Movie) -> str:
    return ""


def typeddict_total_false(movie: PartialMovie) -> str:
    return ""


def bounded_int(n: Annotated[int, Field(ge=1, le=10)]) -> str:
    return ""


def bounded_float(x: Annotated[float, Field(gt=0, lt=1, multiple_of=0.25)] = 0.5) -> str:
    return ""


def string_lengths(code: Annotated[str, Field(min_length=2, max_length=5)]) -> str:
    return ""


def string_pattern(code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]) -> str:
    return ""


def list_lengths(values: Annotated[list[int], Field(min_length=1, max_length=3)]) -> str:
    return ""


def field_default(count: int = Field(5, ge=0, description="How many.")) -> str:
    return ""


def field_description_wins(x: Annotated[int, Field(description="From the field.")]) -> str:
    """Use the field.

    Args:
        x: From the docstring.
    """
    return ""


def aliased(x: Annotated[int, Field(alias="the_x")]) -> str:
    return ""


def awkward_names(schema: str, model_config: int, _private: bool = False) -> str:
    return ""


def google_doc(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    Uses the national weather service.

    Args:
        city: The city name,
            possibly with a country.
        days: How many days ahead.

    Returns:
        A forecast.
    """
    return ""


def numpy_doc(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    Parameters
    ----------
    city : str
        The city name.
    days : int
        How many days ahead.

    Returns
    -------
    str
        A forecast.
    """
    return ""


def sphinx_doc(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    :param city: The city name.
    :param days: How many days ahead.
    :returns: A forecast.
    """
    return ""


def plain_doc(city: str) -> str:
    """Look a city up.

    Two paragraphs of
    explanation.
    """
    return ""


def context_first(ctx: RunContext[int], query: str) -> str:
    """Search with the run's dependencies."""
    return ""


def context_last(query: str, ctx: RunContext[Any]) -> str:
    return ""


def keyword_only(*, a: int, b: str = "x") -> str:
    return ""


async def async_tool(query: str, limit: int = 10) -> str:
    """An async search."""
    return ""


CASES: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in [
        no_params,
        one_str,
        primitives,
        with_defaults,
        optional_none,
        optional_required,
        literal_str,
        literal_mixed,
        literal_single,
        literal_default,
        enum_str,
        enum_int,
        enum_default,
        union_primitives,
        union_models,
        discriminated,
        list_str,
        list_models,
        list_of_lists,
        list_of_unions,
        nullable_list,
        set_int,
        tuple_fixed,
        tuple_mixed,
        tuple_variadic,
        dict_str_int,
        dict_any,
        dict_of_models,
        any_param,
        datetime_param,
        date_param,
        time_param,
        timedelta_param,
        uuid_param,
        decimal_param,
        bytes_param,
        nested_model,
        nested_optional_model,
        deep_nested,
        recursive,
        recursive_optional,
        model_with_defaults,
        dataclass_param,
        typeddict_param,
        typeddict_total_false,
        bounded_int,
        bounded_float,
        string_lengths,
        string_pattern,
        list_lengths,
        field_default,
        field_description_wins,
        aliased,
        awkward_names,
        google_doc,
        numpy_doc,
        sphinx_doc,
        plain_doc,
        context_first,
        context_last,
        keyword_only,
        async_tool,
    ]
}

# Cases whose schema strict mode cannot express: they go out non-strict automatically.
LOSSY = {"dict_str_int", "dict_any", "dict_of_models", "any_param"}


def render(made: Tool) -> dict[str, Any]:
    loose = made.definition(False)
    auto = made.definition(None)
    try:
        strict: Any = dict(made.definition(True).parameters)
    except UsageError as exc:
        strict = {"error": str(exc)}
    return {
        "description": loose.description,
        "auto_strict": auto.strict,
        "non_strict": dict(loose.parameters),
        "strict": strict,
    }


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", sorted(CASES))
def test_snapshot(case: str) -> None:
    made = tool(CASES[case])
    rendered = render(made)
    path = SNAPSHOTS / f"{case}.json"
    text = json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot for {case}: run with AGENTLOOP_UPDATE_SNAPSHOTS=1"
    assert json.loads(path.read_text(encoding="utf-8")) == rendered


@pytest.mark.parametrize("case", sorted(CASES))
def test_schemas_are_valid_and_strict_ones_inside_the_subset(case: str) -> None:
    made = tool(CASES[case])
    Draft202012Validator.check_schema(dict(made.definition(False).parameters))
    assert made.definition(None).strict is (case not in LOSSY)
    if case in LOSSY:
        with pytest.raises(UsageError, match=f"tool '{case}' cannot be strict: "):
            made.definition(True)
        return
    strict = dict(made.definition(True).parameters)
    Draft202012Validator.check_schema(strict)
    assert strict_subset_violations(strict) == []


def test_no_snapshot_is_left_over() -> None:
    names = {p.stem for p in SNAPSHOTS.glob("*.json")}
    assert names == set(CASES)
