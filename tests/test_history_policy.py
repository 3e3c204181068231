"""History policies: drop oldest, truncate tool results, chains; pairs and pinned messages kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.conversations import (
    conversations,
    fetch,
    make_conversation,
    message_size,
    tool_turn,
    unpaired_ids,
    window_budget,
)

from agentloop import (
    Agent,
    AssistantMessage,
    Message,
    SystemMessage,
    ToolMessage,
    UsageError,
    UserMessage,
    WindowBudget,
    chain,
    drop_oldest,
    truncate_tool_results,
)
from agentloop._history_policy import apply_policy, history_units
from agentloop.testing import FakeServer, tool_call


def test_drop_oldest_drops_whole_tool_turns_oldest_first() -> None:
    messages = make_conversation(5)
    budget = window_budget(sum(message_size(m) for m in messages) - 20)  # one turn too many
    kept = drop_oldest(list(messages), budget)
    assert kept == [messages[0], messages[1], *messages[4:]]  # turn 0 (call + result) gone
    assert budget.fits(kept)


def test_drop_oldest_keeps_the_system_prompt_and_latest_user_message_even_if_too_big() -> None:
    messages = [SystemMessage("s" * 50), UserMessage("old"), reply_msg("a"), UserMessage("u" * 50)]
    kept = drop_oldest(list(messages), window_budget(10))
    assert kept == [messages[0], messages[3]]


def reply_msg(text: str) -> AssistantMessage:
    return AssistantMessage(text)


def test_drop_oldest_drops_earlier_user_turns_after_everything_else() -> None:
    messages = [
        SystemMessage("s"),
        UserMessage("first question"),
        reply_msg("first answer"),
        UserMessage("second"),
        *tool_turn(0),
    ]
    total = sum(message_size(m) for m in messages)
    kept = drop_oldest(list(messages), window_budget(total - message_size(messages[2])))
    assert messages[1] in kept and messages[2] not in kept


def test_truncate_tool_results_cuts_oldest_first_and_stops_when_it_fits() -> None:
    messages = make_conversation(3, result="x" * 50)  # results of 500 characters
    budget = window_budget(sum(message_size(m) for m in messages) - 300)
    cut = truncate_tool_results(100)(list(messages), budget)
    assert isinstance(cut, list)
    results = [m for m in cut if isinstance(m, ToolMessage)]
    assert "characters cut to fit" in results[0].content
    assert results[0].content.startswith("x" * 100)
    assert results[2].content == "x" * 500  # the latest result untouched: it already fits
    assert budget.fits(cut)


def test_truncate_tool_results_rejects_a_bad_size() -> None:
    with pytest.raises(UsageError):
        truncate_tool_results(0)


@pytest.mark.anyio
async def test_chain_runs_policies_in_order_until_it_fits() -> None:
    seen: list[str] = []

    def first(messages: list[Message], budget: WindowBudget) -> list[Message]:
        seen.append("first")
        return drop_oldest(messages, budget)

    async def never(messages: list[Message], budget: WindowBudget) -> list[Message]:
        seen.append("never")
        return messages

    messages = make_conversation(4)
    budget = window_budget(sum(message_size(m) for m in messages) - 5)
    result = await apply_policy(chain(first, never), messages, budget)
    assert seen == ["first"]
    assert budget.fits(result)


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(0, 400), st.integers(1, 80))
def test_policies_never_split_pairs_nor_drop_pinned_messages(
    messages: list[Message], limit: int, max_chars: int
) -> None:
    budget = window_budget(limit)
    policy = chain(truncate_tool_results(max_chars), drop_oldest)
    import anyio

    kept = anyio.run(apply_policy, policy, list(messages), budget)
    assert unpaired_ids(kept) == set()
    assert [m for m in messages if isinstance(m, SystemMessage)] == [
        m for m in kept if isinstance(m, SystemMessage)
    ]
    last_user = [m for m in messages if isinstance(m, UserMessage)][-1]
    assert any(m is last_user for m in kept)
    # Order is kept, and when it does not fit, nothing more could have been dropped.
    positions = [next(i for i, o in enumerate(messages) if _same(o, m)) for m in kept]
    assert positions == sorted(positions)
    if not budget.fits(kept):
        units = history_units(kept)
        droppable = [u for u in units if not any(_pinned(kept[i], kept) for i in u)]
        assert droppable == []


def _same(original: Message, kept: Message) -> bool:
    if isinstance(original, ToolMessage) and isinstance(kept, ToolMessage):
        return original.tool_call_id == kept.tool_call_id
    return original is kept


def _pinned(message: Message, messages: list[Message]) -> bool:
    users = [m for m in messages if isinstance(m, UserMessage)]
    return isinstance(message, SystemMessage) or (bool(users) and message is users[-1])


@pytest.mark.anyio
async def test_a_policy_that_splits_a_tool_pair_is_a_usage_error() -> None:
    def bad(messages: list[Message], budget: WindowBudget) -> list[Message]:
        return [m for m in messages if not isinstance(m, ToolMessage)]

    with FakeServer(
        [tool_call(("fetch", {"page": 0})), tool_call(("fetch", {"page": 1}))],
        model_name="gpt-3.5-turbo-0613",
    ) as server:
        agent = Agent(server.model(), tools=[fetch], history_policy=bad)
        with pytest.raises(UsageError, match="split a tool call"):
            await agent.run("x " * 2400)
    assert len(server.requests) == 2 - 0  # the first two fit; the third was never sent


@pytest.mark.anyio
async def test_a_policy_that_drops_the_system_prompt_is_a_usage_error() -> None:
    def bad(messages: list[Message], budget: WindowBudget) -> list[Message]:
        return messages[1:]

    with FakeServer([], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), instructions="sys", history_policy=bad)
        with pytest.raises(UsageError, match="dropped the system prompt"):
            await agent.run("word " * 5000)
    assert server.requests == []
