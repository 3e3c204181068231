"""Output types and modes: the schema sent and the reply read for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from support.orders import ORDER, Item, Order
from typing_extensions import TypedDict

from agentloop import LLAMA_CPP_PROFILE, Agent
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


async def test_native_json_schema_strict() -> None:
    with FakeServer([reply(ORDER)]) as server:
        result = await Agent(server.model(), output_type=Order).run("order?")
    assert result.output == Order.model_validate(ORDER)
    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Order"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["customer", "items", "priority"]


async def test_prompted_mode_reads_fenced_json() -> None:
    fenced = "```json\n" + '{"customer": "Bo", "items": []}' + "\n```"
    with FakeServer([reply(fenced)]) as server:
        result = await Agent(server.model(), output_type=Order, output_mode="prompted").run(
            "order?"
        )
    assert result.output == Order(customer="Bo", items=[])
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system" and '"customer"' in system["content"]
    assert "response_format" not in server.requests[0]


async def test_llama_cpp_profile_sends_json_object_with_schema() -> None:
    with FakeServer([reply(ORDER)]) as server:
        await Agent(server.model(LLAMA_CPP_PROFILE), output_type=Order).run("order?")
    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["customer"]["type"] == "string"


@dataclass
class Pair:
    left: int
    right: int


class Named(TypedDict):
    name: str


@pytest.mark.parametrize(
    ("output_type", "answer", "expected"),
    [
        (Pair, {"left": 1, "right": 2}, Pair(1, 2)),
        (Named, {"name": "x"}, {"name": "x"}),
        (list[Item], {"result": [{"name": "a", "qty": 1}]}, [Item(name="a", qty=1)]),
        (int | str, {"result": 7}, 7),
    ],
)
async def test_other_output_types(output_type: Any, answer: Any, expected: Any) -> None:
    with FakeServer([reply(answer)]) as server:
        result = await Agent(server.model(), output_type=output_type).run("go")
    assert result.output == expected
    assert server.requests[0]["response_format"]["json_schema"]["schema"]["type"] == "object"


async def test_raw_json_schema_output() -> None:
    schema = {
        "title": "Person",
        "type": "object",
        "properties": {"age": {"type": "integer", "minimum": 0}},
        "required": ["age"],
    }
    with FakeServer([reply({"age": -1}), reply({"age": 30})]) as server:
        result = await Agent(server.model(), output_type=schema).run("age?")
    assert result.output == {"age": 30}
    assert "minimum" in server.requests[1]["messages"][-1]["content"]
