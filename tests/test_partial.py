"""Partial structured output: values hold only complete fields, for nested and wrapped types,
dataclasses and TypedDicts, in every output mode, and the total parsing work stays linear."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import pydantic_core
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from agentloop import Agent, tool
from agentloop._events import PartialOutput, ToolCallFinished
from agentloop._partial import PartialParser
from agentloop.testing import FakeServer, reply, tool_call


class Tag(BaseModel):
    label: str
    weight: float


class Item(BaseModel):
    name: str
    count: int
    tags: list[Tag]


class Order(BaseModel):
    customer: str
    items: list[Item]
    note: str | None = None


@dataclass
class Point:
    x: int
    y: int
    label: str


class Row(TypedDict):
    key: str
    value: int


ORDER = {
    "customer": "Ada Lovelace",
    "items": [
        {"name": f"item {i}", "count": 100 + 7 * i, "tags": [{"label": "x" * i, "weight": 1.25}]}
        for i in range(6)
    ],
    "note": "deliver before noon",
}


def feed_chars(parser: PartialParser, text: str) -> list[Any]:
    values = [v for ch in text if (v := parser.feed(ch)) is not None]
    final = parser.flush()
    return [*values, final] if final is not None else values


def is_prefix_of(value: Any, full: Any) -> bool:
    """Every field set in `value` is complete: equal to the full value's, recursively."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return isinstance(full, dict) and all(
            v is None or (k in full and is_prefix_of(v, full[k])) for k, v in value.items()
        )
    if isinstance(value, list):
        return (
            isinstance(full, list)
            and len(value) <= len(full)
            and all(is_prefix_of(v, f) for v, f in zip(value, full, strict=False))
        )
    return value == full


def test_nested_models_fed_one_character_at_a_time() -> None:
    values = feed_chars(PartialParser(Order, wrapped=False), json.dumps(ORDER))
    assert len(values) >= 5
    for value in values:
        assert is_prefix_of(value, ORDER), value
    assert values[-1].model_dump() == ORDER
    lengths = [len(v.items or []) for v in values]
    assert lengths == sorted(lengths) and lengths[-1] == 6
    assert len(set(map(repr, values))) == len(values)  # no value emitted twice


def test_a_trailing_number_waits_until_it_is_complete() -> None:
    parser = PartialParser(Tag, wrapped=False)
    text = '{"label": "a", "weight": 12345.5' + " " * 40
    seen = feed_chars(parser, text)
    assert all(v.weight in (None, 12345.5) for v in seen)
    assert seen[-1].weight == 12345.5  # complete once the stream ended
    assert (
        PartialParser(Tag, wrapped=False).feed('{"label": "a", "weight": 12' + " " * 32) is not None
    )


def test_wrapped_list_output() -> None:
    full = [{"label": f"l{i}", "weight": i / 4} for i in range(20)]
    values = feed_chars(PartialParser(list[Tag], wrapped=True), json.dumps({"result": full}))
    assert values
    for value in values:
        assert isinstance(value, list)
        assert is_prefix_of([t.model_dump() for t in value], full)
    assert [t.model_dump() for t in values[-1]] == full


def test_dataclass_output_gets_partial_values() -> None:
    full = {"x": 1000, "y": 2000, "label": "a long label " * 5}
    values = feed_chars(PartialParser(Point, wrapped=False), json.dumps(full))
    assert len(values) >= 2
    assert values[0].x == 1000 and values[0].label is None  # before the whole value is there
    for value in values:
        assert is_prefix_of(value, full)
    assert values[-1].model_dump() == full


def test_typeddict_output_holds_only_complete_keys() -> None:
    full = [{"key": f"k{i}" * 4, "value": 10_000 + i} for i in range(15)]
    values = feed_chars(PartialParser(list[Row], wrapped=True), json.dumps({"result": full}))
    assert len(values) >= 3
    for value in values:
        assert is_prefix_of(value, full), value
        assert all(isinstance(row, dict) for row in value)
    assert values[-1] == full


def test_prompted_output_in_a_code_fence() -> None:
    text = "```json\n" + json.dumps(ORDER) + "\n```"
    values = feed_chars(PartialParser(Order, wrapped=False), text)
    assert values[-1].model_dump() == ORDER
    assert all(is_prefix_of(v, ORDER) for v in values)


def test_total_parsing_work_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = pydantic_core.from_json

    def counting(data: Any, **options: Any) -> Any:
        parsed.append(len(data))
        return real(data, **options)

    monkeypatch.setattr(pydantic_core, "from_json", counting)
    big = {
        "customer": "c",
        "items": [{**ORDER["items"][i % 6], "name": f"n{i}"} for i in range(400)],
    }
    text = json.dumps(big)
    n = len(text)
    assert n > 20_000
    values = feed_chars(PartialParser(Order, wrapped=False), text)
    assert values[-1].model_dump() == {**big, "note": None}
    assert len(parsed) <= 120  # geometric steps: about log(n) parses, not n
    assert sum(parsed) <= 10 * n  # total characters parsed stay linear in the length
    # the same text in 20-character chunks costs no more
    parsed.clear()
    chunks = [text[i : i + 20] for i in range(0, n, 20)]
    parser = PartialParser(Order, wrapped=False)
    for chunk in chunks:
        parser.feed(chunk)
    parser.flush()
    assert sum(parsed) <= 10 * n


# ---- through a streamed run ----------------------------------------------------------------


@tool
def lookup(sku: str) -> str:
    """Look a product up.

    Args:
        sku: the product code
    """
    return f"{sku}: in stock"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["native", "tool", "prompted"])
async def test_partial_output_in_every_mode(mode: Literal["native", "tool", "prompted"]) -> None:
    script: list[Any] = [tool_call(("lookup", {"sku": '{"customer": "decoy"}'}))]
    script.append(tool_call(("final_result", ORDER)) if mode == "tool" else reply(ORDER))
    server = FakeServer(script)
    agent = Agent(server.model(), output_type=Order, output_mode=mode, tools=[lookup])
    with anyio.fail_after(10):
        async with agent.run_stream("order") as stream:
            events = [event async for event in stream]
    server.assert_done()
    partials = [e.value for e in events if isinstance(e, PartialOutput)]
    assert len(partials) >= 3
    # nothing from the other tool's arguments; all partials come after that tool ran
    first_partial = next(i for i, e in enumerate(events) if isinstance(e, PartialOutput))
    tool_done = next(i for i, e in enumerate(events) if isinstance(e, ToolCallFinished))
    assert tool_done < first_partial
    for value in partials:
        assert is_prefix_of(value, ORDER), value
    assert partials[-1].model_dump() == ORDER
    assert stream.result.output == Order.model_validate(ORDER)


@pytest.mark.anyio
async def test_wrapped_output_streams_partial_lists() -> None:
    full = [{"label": f"tag number {i}", "weight": i + 0.5} for i in range(25)]
    server = FakeServer([reply({"result": full})])
    agent = Agent(server.model(), output_type=list[Tag], output_mode="native")
    with anyio.fail_after(10):
        async with agent.run_stream("tags") as stream:
            partials = [e.value async for e in stream if isinstance(e, PartialOutput)]
    lengths = [len(p) for p in partials]
    assert len(partials) >= 3 and lengths == sorted(lengths)
    assert [t.model_dump() for t in partials[-1]] == full
    assert stream.result.output == [Tag.model_validate(t) for t in full]
