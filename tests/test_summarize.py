"""`summarize_older`: one summary request, reused and extended; pairs and pinned messages kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

from agentloop import Agent, Message, SystemMessage, UserMessage, summarize_older
from agentloop._history_policy import apply_policy
from agentloop._summarize import SUMMARY_HEADING
from agentloop._wire.tokens import count_body_tokens
from agentloop.testing import FakeServer, reply, tool_call


@pytest.mark.anyio
async def test_summarize_older_asks_the_model_once_and_reuses_the_summary() -> None:
    asked: list[Sequence[Message]] = []

    async def asker(messages: Sequence[Message], max_tokens: int) -> str:
        asked.append(messages)
        return f"summary {len(asked)}"

    policy = summarize_older(max_summary_tokens=20, fill=0.6)
    messages = make_conversation(10)
    budget = window_budget(sum(message_size(m) for m in messages) - 40, asker, context=10_000)
    first = await apply_policy(policy, messages, budget)
    assert len(asked) == 1
    assert isinstance(first[0], SystemMessage)
    assert first[0].content == f"sys\n\n{SUMMARY_HEADING}\nsummary 1"
    assert first[1] == messages[1]  # the latest user message stays in place
    assert budget.fits(first) and unpaired_ids(first) == set()
    transcript = asked[0][1].content
    assert isinstance(transcript, str) and 'Assistant called look({"i": 0})' in transcript
    # The next turn adds a little: the same summary is reused, nothing is asked.
    grown = [*messages, *tool_turn(10)]
    second = await apply_policy(policy, grown, budget)
    assert len(asked) == 1 and second[0] == first[0] and second[-2:] == grown[-2:]


@pytest.mark.anyio
async def test_summarize_older_extends_its_previous_summary() -> None:
    asked: list[str] = []

    async def asker(messages: Sequence[Message], max_tokens: int) -> str:
        asked.append(str(messages[1].content))
        return f"summary {len(asked)}"

    policy = summarize_older(max_summary_tokens=10, fill=0.9)
    messages = make_conversation(6)
    budget = window_budget(sum(message_size(m) for m in messages) - 30, asker, context=10_000)
    await apply_policy(policy, messages, budget)
    longer = [*messages, *tool_turn(6), *tool_turn(7), *tool_turn(8)]
    result = await apply_policy(policy, longer, budget)
    assert len(asked) == 2
    assert asked[1].startswith(f"{SUMMARY_HEADING}\nsummary 1")
    assert "summary 2" in str(result[0].content)


@pytest.mark.anyio
async def test_summarize_older_in_a_run_counts_the_summary_request() -> None:
    def summary(body: dict[str, Any]) -> Any:
        assert "tools" not in body and body["max_completion_tokens"] == 200
        return reply("Pages 0-4 were lorem ipsum.")

    script: list[Any] = [tool_call(("fetch", {"page": i})) for i in range(14)]
    with FakeServer(model_name="gpt-3.5-turbo-0613") as server:
        policy = summarize_older(max_summary_tokens=200, fill=0.5)
        agent = Agent(server.model(), tools=[fetch], instructions="Read.", history_policy=policy)

        def next_item(body: dict[str, Any]) -> Any:
            if "tools" not in body:
                return summary(body)
            return script.pop(0) if script else reply("done")

        server.add(*([next_item] * 20))
        result = await agent.run("Read pages 0 to 13.")
        server.script.clear()
    summaries = [b for b in server.requests if "tools" not in b]
    assert summaries, "the model was asked for a summary"
    assert result.usage.requests == len(server.requests)
    last = server.requests[-1]["messages"]
    assert SUMMARY_HEADING in last[0]["content"]
    assert count_body_tokens(server.requests[-1]).tokens <= 4096 - 1024


@settings(max_examples=100, deadline=None)
@given(conversations(), st.integers(0, 400))
def test_summaries_never_split_pairs_nor_drop_pinned_messages(
    messages: list[Message], limit: int
) -> None:
    import anyio

    async def asker(ask: Sequence[Message], max_tokens: int) -> str:
        return "S"

    budget = window_budget(limit, asker, context=100_000)
    kept = anyio.run(apply_policy, summarize_older(max_summary_tokens=5), list(messages), budget)
    assert unpaired_ids(kept) == set()
    last_user = [m for m in messages if isinstance(m, UserMessage)][-1]
    assert any(m is last_user for m in kept)
    systems = [m for m in messages if isinstance(m, SystemMessage)]
    for original in systems:
        assert any(
            isinstance(m, SystemMessage) and m.content.startswith(original.content) for m in kept
        )
