"""Structured output through the fake server: every mode, re-asks, refusals, truncation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs
from typing_extensions import TypedDict

from agentloop import (
    DEFAULT_PROFILE,
    LLAMA_CPP_PROFILE,
    Agent,
    OutputTruncatedError,
    OutputValidationError,
    RefusalError,
    RunContext,
    ToolRetry,
)
from agentloop.testing import FakeServer, Reply, reply, tool_call

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    name: str
    qty: int


class Order(BaseModel):
    """An order with its items."""

    customer: str
    items: list[Item]
    priority: Literal["low", "high"] = "low"


ORDER = {"customer": "Ada", "items": [{"name": "tea", "qty": 2}], "priority": "high"}


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


async def test_invalid_output_is_re_asked_with_the_errors() -> None:
    bad = {"customer": "Ada", "items": [{"name": "tea", "qty": "many"}]}
    with FakeServer([reply(bad), reply(ORDER)]) as server, capture_logs() as logs:
        result = await Agent(server.model(), output_type=Order).run("order?")
    retry = next(e for e in logs if e["event"] == "output_retry")
    assert retry["run_id"] == result.run_id
    assert "items.0.qty" in retry["reason"]
    assert result.output.priority == "high"
    re_ask = server.requests[1]["messages"][-1]
    assert re_ask["role"] == "user"
    assert "items.0.qty" in re_ask["content"] and "integer" in re_ask["content"]
    assert result.usage.retries == 1


async def test_output_that_never_validates_raises_with_transcript() -> None:
    with FakeServer([reply("not json")] * 3) as server:
        agent = Agent(server.model(), output_type=Order, output_retries=2)
        with pytest.raises(OutputValidationError) as caught:
            await agent.run("order?")
    err = caught.value
    assert "not valid JSON" in err.errors
    assert err.raw == "not json"
    assert err.usage is not None and err.usage.requests == 3
    assert [m.role for m in err.messages].count("assistant") == 3


async def test_tool_output_mode_uses_a_final_result_tool() -> None:
    with FakeServer([tool_call(("final_result", ORDER))]) as server:
        result = await Agent(server.model(), output_type=Order, output_mode="tool").run("order?")
    assert result.output.customer == "Ada"
    body = server.requests[0]
    assert "response_format" not in body
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["final_result"]
    assert result.messages[-1].role == "tool"  # the output call is answered in the history


async def test_tool_mode_re_asks_when_the_model_answers_in_text() -> None:
    script = [reply("here you go: Ada, tea"), tool_call(("final_result", ORDER))]
    with FakeServer(script) as server:
        result = await Agent(server.model(DEFAULT_PROFILE), output_type=Order).run("order?")
    assert result.output.customer == "Ada"
    assert server.requests[0]["tool_choice"] == "auto"  # the default profile cannot force tools
    assert "final_result" in server.requests[1]["messages"][-1]["content"]


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


async def test_refusal_raises_refusal_error() -> None:
    with FakeServer([Reply(refusal="I can't help with that.")]) as server:
        with pytest.raises(RefusalError) as caught:
            await Agent(server.model(), output_type=Order).run("order?")
    assert caught.value.refusal == "I can't help with that."
    assert caught.value.messages[-1].role == "assistant"


async def test_length_on_structured_output_is_truncation_not_json_error() -> None:
    with FakeServer([reply('{"customer": "Ad', finish_reason="length")]) as server:
        with pytest.raises(OutputTruncatedError, match="token limit"):
            await Agent(server.model(), output_type=Order).run("order?")


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


async def test_output_validators_may_re_ask_and_see_the_context() -> None:
    seen: list[Any] = []

    def no_empty_orders(ctx: RunContext[str], order: Order) -> Order:
        seen.append(ctx.deps)
        if not order.items:
            raise ToolRetry("an order needs at least one item")
        return order

    script = [reply({"customer": "Ada", "items": []}), reply(ORDER)]
    with FakeServer(script) as server:
        agent = Agent(server.model(), output_type=Order, output_validators=[no_empty_orders])
        result = await agent.run("order?", deps="shop")
    assert result.output.items
    assert seen == ["shop", "shop"]
    assert "at least one item" in server.requests[1]["messages"][-1]["content"]
