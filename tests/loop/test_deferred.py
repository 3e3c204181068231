"""Approvals that wait: approver="defer" stops the run before such calls; resume() goes on."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from agentloop import Agent, ToolMessage, UsageError, tool
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio

REFUNDS: list[tuple[str, float]] = []


@tool(requires_approval=True)
async def refund(order: str, amount: float) -> str:
    """Refund an order."""
    REFUNDS.append((order, amount))
    return f"refunded {amount} on {order}"


@tool
async def lookup(order: str) -> str:
    """Look an order up."""
    return f"{order}: 34 USD"


def desk(*script: Any) -> tuple[Agent[str], FakeServer]:
    server = FakeServer(list(script), model_name="gpt-4o-mini")
    return Agent(server.model(), tools=[refund, lookup], approver="defer"), server


def answers(messages: list[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


@pytest.fixture(autouse=True)
def _no_refunds() -> None:
    REFUNDS.clear()


async def test_the_run_stops_before_the_turn_and_resumes_with_the_decision() -> None:
    agent, first = desk(
        tool_call(("lookup", {"order": "A17"}), ("refund", {"order": "A17", "amount": 34}))
    )
    paused = await agent.run("Refund A17.")
    assert paused.pending_approvals and cast(object, paused.output) is None
    [waiting] = paused.pending_approvals
    assert (waiting.tool, json.loads(waiting.arguments)) == (
        "refund",
        {"order": "A17", "amount": 34},
    )
    assert REFUNDS == [] and answers(paused.messages) == []  # nothing of the turn ran
    state = paused.state_json()
    assert "sk-fake-server" not in state  # the key never goes in a state
    assert paused.usage.requests == 1

    # Later, elsewhere: the same agent built again, and the decision.
    agent, second = desk(reply("Refunded 34 USD."))
    result = await agent.resume(state, approvals={waiting.id: True})
    assert result.output == "Refunded 34 USD."
    assert REFUNDS == [("A17", 34.0)]
    assert [a.content for a in answers(result.messages)] == ["A17: 34 USD", "refunded 34.0 on A17"]
    assert result.usage.requests == 2 and result.usage.tool_calls == 2  # continued, not restarted
    assert result.run_id == paused.run_id
    assert result.cost is not None and paused.cost is not None and result.cost > paused.cost
    sent = second.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    first.assert_done()
    second.assert_done()


async def test_a_refused_call_is_answered_as_refused() -> None:
    agent, _ = desk(tool_call(("refund", {"order": "B42", "amount": 420})))
    paused = await agent.run("Refund B42.")
    agent, _ = desk(reply("I cannot refund that."))
    result = await agent.resume(paused.state_json(), {paused.pending_approvals[0].id: False})
    assert REFUNDS == []
    [answer] = answers(result.messages)
    assert answer.is_error and "not approved" in answer.content


async def test_resuming_the_same_state_twice_gives_two_continuations() -> None:
    agent, _ = desk(tool_call(("refund", {"order": "C1", "amount": 5})))
    paused = await agent.run("Refund C1.")
    decision = {paused.pending_approvals[0].id: True}
    outputs = []
    for text in ("first", "second"):
        again, _ = desk(reply(text))
        outputs.append((await again.resume(paused.state_json(), decision)).output)
    assert outputs == ["first", "second"]
    assert REFUNDS == [("C1", 5.0), ("C1", 5.0)]  # each continuation ran the approved call


async def test_bad_resumes_are_refused_before_anything_runs() -> None:
    agent, server = desk(tool_call(("refund", {"order": "D1", "amount": 1})))
    paused = await agent.run("Refund D1.")
    state = paused.state_json()
    with pytest.raises(UsageError, match="no decision"):
        await agent.resume(state, {})
    with pytest.raises(UsageError, match="not pending"):
        await agent.resume(state, {paused.pending_approvals[0].id: True, "call_x": True})
    with pytest.raises(UsageError, match="cannot resume"):
        await agent.resume('{"agentloop_state": 99}', {})
    with pytest.raises(UsageError, match="cannot resume"):
        await agent.resume("not json", {})
    finished = await Agent(FakeServer([reply("done")]).model()).run("hi")
    with pytest.raises(UsageError, match="finished"):
        finished.state_json()
    assert REFUNDS == [] and len(server.requests) == 1


async def test_a_repeat_of_an_approved_call_after_resume_is_not_asked_again() -> None:
    agent, _ = desk(tool_call(("refund", {"order": "E5", "amount": 5})))
    paused = await agent.run("Refund E5.")
    # the resumed model asks for the same refund again, then answers
    again, server = desk(tool_call(("refund", {"order": "E5", "amount": 5})), reply("done"))
    result = await again.resume(paused.state_json(), {paused.pending_approvals[0].id: True})
    assert result.output == "done" and result.pending_approvals == ()
    assert REFUNDS == [("E5", 5.0)]  # ran once
    assert answers(result.messages)[-1].content.startswith("Same call as before")
    server.assert_done()


async def test_a_new_call_reusing_an_answered_calls_id_waits_and_runs() -> None:
    """Some servers number calls per turn (the fake: ``call_0_refund`` each time): the call
    waiting is matched with answers of its own turn only, never an earlier turn's."""
    agent, _ = desk(tool_call(("refund", {"order": "A17", "amount": 34})))
    first = await agent.run("Refund A17, then 5 USD more.")
    again, _ = desk(tool_call(("refund", {"order": "A17", "amount": 5})))
    second = await again.resume(first.state_json(), {first.pending_approvals[0].id: True})
    [waiting] = second.pending_approvals
    assert waiting.id == first.pending_approvals[0].id  # the same id, a new call
    last, server = desk(reply("both refunded"))
    result = await last.resume(second.state_json(), {waiting.id: True})
    assert REFUNDS == [("A17", 34.0), ("A17", 5.0)]
    assert [m.content for m in answers(result.messages)] == [
        "refunded 34.0 on A17",
        "refunded 5.0 on A17",
    ]
    server.assert_done()
