"""Handoffs: the model hands the run to another agent, which answers from there on."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import BaseModel

from agentloop import (
    Agent,
    Limits,
    Message,
    ToolCallFinished,
    ToolMessage,
    TurnFinished,
    UsageError,
    UsageLimitExceeded,
    UserMessage,
    handoff,
)
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


class Refund(BaseModel):
    order: str
    amount: float


def roles(body: dict[str, object]) -> list[str]:
    return [m["role"] for m in body["messages"]]  # type: ignore[index, union-attr]


def tool_names(body: dict[str, object]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]  # type: ignore[index, union-attr]


def lookup(order: str) -> str:
    """Look an order up."""
    return f"{order}: 34 USD, broken"


async def test_the_target_answers_with_its_instructions_tools_and_output_type() -> None:
    billing_model = FakeServer(
        [tool_call(("lookup", {"order": "A17"})), reply({"order": "A17", "amount": 34.0})]
    )
    billing = Agent(
        billing_model.model(),
        name="billing",
        instructions="You handle refunds.",
        tools=[lookup],
        output_type=Refund,
    )
    triage_model = FakeServer([tool_call(("transfer_to_billing", {}))])
    triage = Agent(
        triage_model.model(), name="triage", instructions="Route the user.", handoffs=[billing]
    )
    result = await triage.run("Refund order A17, it arrived broken.")
    assert result.output == Refund(order="A17", amount=34.0)
    assert result.agent == "billing"
    assert "transfer_to_billing" in tool_names(triage_model.requests[0])
    first = billing_model.requests[0]
    assert first["messages"][0] == {"role": "system", "content": "You handle refunds."}
    assert roles(first) == ["system", "user", "assistant", "tool"]
    assert first["messages"][3]["content"] == "Transferred to billing."
    assert tool_names(first) == ["lookup"]  # the target's tools, not triage's
    assert first["response_format"]["json_schema"]["name"] == "Refund"
    by_agent = result.usage_by_agent
    assert (by_agent["triage"].requests, by_agent["billing"].requests) == (1, 2)
    assert result.usage.requests == 3
    triage_model.assert_done()
    billing_model.assert_done()


async def test_an_input_filter_shortens_what_the_target_sees() -> None:
    def users_only(messages: list[Message]) -> Sequence[Message]:
        return [m for m in messages if isinstance(m, UserMessage)]

    support_model = FakeServer([reply("Hello, how can I help?")])
    support = Agent(support_model.model(), name="support", instructions="Be kind.")
    router_model = FakeServer([tool_call(("to_support", {}))])
    router = Agent(
        router_model.model(),
        handoffs=[handoff(support, tool_name="to_support", input_filter=users_only)],
    )
    result = await router.run("hi")
    assert result.output == "Hello, how can I help?"
    assert support_model.requests[0]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert [m.role for m in result.messages] == ["system", "user", "assistant"]


async def test_the_runs_limits_hold_across_a_handoff() -> None:
    target_model = FakeServer([tool_call(("lookup", {"order": "A1"})), reply("never")])
    target = Agent(target_model.model(), name="target", tools=[lookup])
    source = Agent(
        FakeServer([tool_call(("transfer_to_target", {}))]).model(),
        handoffs=[target],
        limits=Limits(max_requests=2),
    )
    with pytest.raises(UsageLimitExceeded, match="max_requests=2") as caught:
        await source.run("go")
    assert caught.value.usage is not None and caught.value.usage.requests == 2


async def test_one_handoff_per_turn() -> None:
    first = Agent(FakeServer([reply("first here")]).model(), name="first")
    second = Agent(FakeServer().model(), name="second")
    model = FakeServer([tool_call(("transfer_to_first", {}), ("transfer_to_second", {}))])
    result = await Agent(model.model(), handoffs=[first, second]).run("go")
    assert result.agent == "first"
    answers = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert answers[0] == "Transferred to first."
    assert answers[1].startswith("Not transferred")


async def test_a_streamed_run_hands_over_too() -> None:
    billing = Agent(
        FakeServer([reply({"order": "B2", "amount": 5.0})]).model(),
        name="billing",
        output_type=Refund,
    )
    triage = Agent(FakeServer([tool_call(("transfer_to_billing", {}))]).model(), handoffs=[billing])
    async with triage.run_stream("refund B2") as stream:
        events = [event async for event in stream]
    assert stream.result.output == Refund(order="B2", amount=5.0)
    assert stream.result.agent == "billing"
    turns = [e.agent for e in events if isinstance(e, TurnFinished)]
    assert turns == ["agent", "billing"]
    [handed] = [e for e in events if isinstance(e, ToolCallFinished)]
    assert (handed.name, handed.agent) == ("transfer_to_billing", "agent")


def test_a_target_needs_a_name() -> None:
    with pytest.raises(UsageError, match="name"):
        Agent(FakeServer().model(), handoffs=[Agent(FakeServer().model())])


def test_a_target_name_the_api_would_refuse_is_made_valid() -> None:
    care = Agent(FakeServer().model(), name="customer care/EU")
    assert handoff(care).tool_name == "transfer_to_customer_care_EU"
