"""History policies and the fit step: what is sent fits the window, the transcript keeps all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentloop import (
    Agent,
    AssistantMessage,
    ContextWindowError,
    Message,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageError,
    UserMessage,
    WindowBudget,
    chain,
    drop_oldest,
    summarize_older,
    tool,
    truncate_tool_results,
)
from agentloop._history_policy import apply_policy, history_units
from agentloop._summarize import SUMMARY_HEADING
from agentloop._wire.tokens import count_body_tokens
from agentloop.testing import FakeServer, reply, tool_call


def _size(message: Message) -> int:
    content: Any = getattr(message, "content", None) or ""
    calls = getattr(message, "tool_calls", ())
    return (
        1
        + len(content if isinstance(content, str) else json.dumps(content))
        + sum(len(c.arguments) for c in calls)
    )


def _budget(limit: int, asker: Any = None, context: int | None = None) -> WindowBudget:
    return WindowBudget(
        limit,
        context or limit * 2,
        (context or limit * 2) - limit,
        lambda messages: sum(_size(m) for m in messages),
        len,
        asker,
    )


def _turn(i: int, result: str = "r") -> list[Message]:
    call = ToolCall(f"c{i}", "look", json.dumps({"i": i}))
    return [AssistantMessage(tool_calls=(call,)), ToolMessage(call.id, result * 10, "look")]


def _conversation(turns: int, result: str = "r") -> list[Message]:
    messages: list[Message] = [SystemMessage("sys"), UserMessage("question")]
    for i in range(turns):
        messages.extend(_turn(i, result))
    return messages


def _unanswered(messages: Sequence[Message]) -> set[str]:
    calls = {c.id for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls}
    return calls ^ {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}


# ---- policies on their own ------------------------------------------------------------------


def test_drop_oldest_drops_whole_tool_turns_oldest_first() -> None:
    messages = _conversation(5)
    budget = _budget(sum(_size(m) for m in messages) - 20)  # one turn too many
    kept = drop_oldest(list(messages), budget)
    assert kept == [messages[0], messages[1], *messages[4:]]  # turn 0 (call + result) gone
    assert budget.fits(kept)


def test_drop_oldest_keeps_the_system_prompt_and_latest_user_message_even_if_too_big() -> None:
    messages = [SystemMessage("s" * 50), UserMessage("old"), reply_msg("a"), UserMessage("u" * 50)]
    kept = drop_oldest(list(messages), _budget(10))
    assert kept == [messages[0], messages[3]]


def reply_msg(text: str) -> AssistantMessage:
    return AssistantMessage(text)


def test_drop_oldest_drops_earlier_user_turns_after_everything_else() -> None:
    messages = [
        SystemMessage("s"),
        UserMessage("first question"),
        reply_msg("first answer"),
        UserMessage("second"),
        *_turn(0),
    ]
    total = sum(_size(m) for m in messages)
    kept = drop_oldest(list(messages), _budget(total - _size(messages[2])))
    assert messages[1] in kept and messages[2] not in kept


def test_truncate_tool_results_cuts_oldest_first_and_stops_when_it_fits() -> None:
    messages = _conversation(3, result="x" * 50)  # results of 500 characters
    budget = _budget(sum(_size(m) for m in messages) - 300)
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

    messages = _conversation(4)
    budget = _budget(sum(_size(m) for m in messages) - 5)
    result = await apply_policy(chain(first, never), messages, budget)
    assert seen == ["first"]
    assert budget.fits(result)


@pytest.mark.anyio
async def test_summarize_older_asks_the_model_once_and_reuses_the_summary() -> None:
    asked: list[Sequence[Message]] = []

    async def asker(messages: Sequence[Message], max_tokens: int) -> str:
        asked.append(messages)
        return f"summary {len(asked)}"

    policy = summarize_older(max_summary_tokens=20, fill=0.6)
    messages = _conversation(10)
    budget = _budget(sum(_size(m) for m in messages) - 40, asker, context=10_000)
    first = await apply_policy(policy, messages, budget)
    assert len(asked) == 1
    assert isinstance(first[0], SystemMessage)
    assert first[0].content == f"sys\n\n{SUMMARY_HEADING}\nsummary 1"
    assert first[1] == messages[1]  # the latest user message stays in place
    assert budget.fits(first) and _unanswered(first) == set()
    transcript = asked[0][1].content
    assert isinstance(transcript, str) and 'Assistant called look({"i": 0})' in transcript
    # The next turn adds a little: the same summary is reused, nothing is asked.
    grown = [*messages, *_turn(10)]
    second = await apply_policy(policy, grown, budget)
    assert len(asked) == 1 and second[0] == first[0] and second[-2:] == grown[-2:]


@pytest.mark.anyio
async def test_summarize_older_extends_its_previous_summary() -> None:
    asked: list[str] = []

    async def asker(messages: Sequence[Message], max_tokens: int) -> str:
        asked.append(str(messages[1].content))
        return f"summary {len(asked)}"

    policy = summarize_older(max_summary_tokens=10, fill=0.9)
    messages = _conversation(6)
    budget = _budget(sum(_size(m) for m in messages) - 30, asker, context=10_000)
    await apply_policy(policy, messages, budget)
    longer = [*messages, *_turn(6), *_turn(7), *_turn(8)]
    result = await apply_policy(policy, longer, budget)
    assert len(asked) == 2
    assert asked[1].startswith(f"{SUMMARY_HEADING}\nsummary 1")
    assert "summary 2" in str(result[0].content)


# ---- the pairing invariant, as a property ---------------------------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(SystemMessage("s" * draw(st.integers(0, 30))))
    for turn in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["user", "text", "tools"]))
        if kind == "user":
            messages.append(UserMessage("u" * draw(st.integers(0, 40))))
        elif kind == "text":
            messages.append(AssistantMessage("a" * draw(st.integers(0, 40))))
        else:
            count = draw(st.integers(1, 3))
            calls = tuple(ToolCall(f"t{turn}_{i}", "f", "{}") for i in range(count))
            messages.append(AssistantMessage(tool_calls=calls))
            messages.extend(ToolMessage(c.id, "r" * draw(st.integers(0, 60)), "f") for c in calls)
    if not any(isinstance(m, UserMessage) for m in messages):
        messages.insert(
            1 if messages and isinstance(messages[0], SystemMessage) else 0, UserMessage("q")
        )
    return messages


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(0, 400), st.integers(1, 80))
def test_policies_never_split_pairs_nor_drop_pinned_messages(
    messages: list[Message], limit: int, max_chars: int
) -> None:
    budget = _budget(limit)
    policy = chain(truncate_tool_results(max_chars), drop_oldest)
    import anyio

    kept = anyio.run(apply_policy, policy, list(messages), budget)
    assert _unanswered(kept) == set()
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


# ---- the fit step inside runs ---------------------------------------------------------------


@tool
def fetch(page: int) -> str:
    """Fetch one page of a long document."""
    return f"page {page}: " + "lorem ipsum dolor sit amet " * 60


def _script(turns: int) -> list[Any]:
    return [*(tool_call(("fetch", {"page": i})) for i in range(turns)), reply("done")]


@pytest.mark.anyio
async def test_sent_requests_fit_a_4k_window_and_the_transcript_keeps_everything() -> None:
    with FakeServer(_script(12), model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), tools=[fetch], instructions="Read the pages.")
        result = await agent.run("Read pages 0 to 11.")
    limit = 4096 - 1024  # a quarter of the window is reserved for the answer
    counts = [count_body_tokens(body).tokens for body in server.requests]
    assert max(counts) <= limit
    assert len(server.requests[-1]["messages"]) < len(result.messages) - 1
    assert sum(isinstance(m, ToolMessage) for m in result.messages) == 12
    for body in server.requests:
        sent = body["messages"]
        assert sent[0] == {"role": "system", "content": "Read the pages."}
        assert sent[1] == {"role": "user", "content": "Read pages 0 to 11."}
        calls = {c["id"] for m in sent for c in m.get("tool_calls") or ()}
        assert calls == {m["tool_call_id"] for m in sent if m["role"] == "tool"}


@pytest.mark.anyio
async def test_streamed_runs_are_fitted_too() -> None:
    with FakeServer(_script(10), model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), tools=[fetch])
        async with agent.run_stream("Read pages 0 to 9.") as stream:
            async for _ in stream:
                pass
    assert max(count_body_tokens(body).tokens for body in server.requests) <= 4096 - 1024
    assert stream.result is not None and len(stream.result.messages) == 22


@pytest.mark.anyio
async def test_no_policy_raises_before_sending() -> None:
    with FakeServer([], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), history_policy=None)
        with pytest.raises(ContextWindowError) as caught:
            await agent.run("word " * 5000)
    assert server.requests == []
    err = caught.value
    assert err.prompt_tokens is not None and err.limit == 4096 - 1024 and err.context == 4096
    assert err.prompt_tokens > err.limit
    assert "gpt-3.5-turbo-0613" in str(err) and "no history policy" in str(err)
    assert err.usage is not None and err.usage.requests == 0
    assert len(err.messages) == 1  # the transcript is kept


@pytest.mark.anyio
async def test_a_prompt_too_large_for_any_policy_raises_before_sending() -> None:
    with FakeServer([], model_name="openai/gpt-3.5-turbo-0613") as server:
        agent = Agent(server.model(), instructions="Be brief.")
        with pytest.raises(ContextWindowError, match="after the history policy"):
            await agent.run("word " * 5000)
    assert server.requests == []


@pytest.mark.anyio
async def test_reserved_output_comes_from_the_settings() -> None:
    prompt = "word " * 2500  # about 2500 tokens: fits 4096 - 1024, not 4096 - 2000
    with FakeServer([reply("ok")], model_name="gpt-3.5-turbo-0613") as server:
        await Agent(server.model(), history_policy=None).run(prompt)
    assert len(server.requests) == 1
    with FakeServer([], model_name="gpt-3.5-turbo-0613") as server:
        agent = Agent(
            server.model(),
            history_policy=None,
            settings=ModelSettings(max_completion_tokens=2000),
        )
        with pytest.raises(ContextWindowError) as caught:
            await agent.run(prompt)
    assert caught.value.limit == 4096 - 2000


@pytest.mark.anyio
async def test_models_unknown_to_the_catalog_are_sent_as_they_are() -> None:
    with FakeServer([reply("ok")], model_name="my-local-model") as server:
        await Agent(server.model(), history_policy=None).run("word " * 5000)
    assert len(server.requests) == 1


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


@pytest.mark.anyio
async def test_the_4k_example_runs_offline_within_the_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "context_window_4k.py"
    spec = importlib.util.spec_from_file_location("context_window_4k", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    await example.run_offline()
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = [row for row in rows if row and row[0].isdigit()]
    assert len(table) == 21  # 20 tool turns and the answer
    assert all(row[-1] == "yes" for row in table)
    assert max(int(row[4]) for row in table) <= 4095 - 1023
    assert int(table[-1][3]) > 0  # older turns were dropped from what was sent
    assert rows[-1][1] == f"'{example._errors_in_log()}'"


@settings(max_examples=100, deadline=None)
@given(conversations(), st.integers(0, 400))
def test_summaries_never_split_pairs_nor_drop_pinned_messages(
    messages: list[Message], limit: int
) -> None:
    import anyio

    async def asker(ask: Sequence[Message], max_tokens: int) -> str:
        return "S"

    budget = _budget(limit, asker, context=100_000)
    kept = anyio.run(apply_policy, summarize_older(max_summary_tokens=5), list(messages), budget)
    assert _unanswered(kept) == set()
    last_user = [m for m in messages if isinstance(m, UserMessage)][-1]
    assert any(m is last_user for m in kept)
    systems = [m for m in messages if isinstance(m, SystemMessage)]
    for original in systems:
        assert any(
            isinstance(m, SystemMessage) and m.content.startswith(original.content) for m in kept
        )


@pytest.fixture
def own_catalog(monkeypatch: pytest.MonkeyPatch) -> Any:
    from agentloop import _prices

    monkeypatch.setattr(_prices, "_overrides", {})
    _prices.lookup_model.cache_clear()
    yield
    _prices.lookup_model.cache_clear()


@pytest.mark.anyio
async def test_registered_models_are_fitted_with_the_estimate(own_catalog: None) -> None:
    from agentloop import ModelInfo, lookup_model, register_model

    register_model(ModelInfo("my-org/tiny-4k", context=1200, max_output=200))
    assert lookup_model("my-org/tiny-4k") == ModelInfo("my-org/tiny-4k", 1200, 200)
    with FakeServer(_script(6), model_name="my-org/tiny-4k") as server:
        result = await Agent(server.model(), tools=[fetch]).run("Read pages 0 to 5.")
    counts = [count_body_tokens(body).tokens for body in server.requests]
    assert not count_body_tokens(server.requests[0]).exact
    assert max(counts) <= 1200 - 200
    assert len(server.requests[-1]["messages"]) < len(result.messages) - 1


def test_catalog_knows_the_seed_model_and_common_openrouter_slugs() -> None:
    from agentloop import lookup_model

    seed = lookup_model("openai/gpt-3.5-turbo-0613")
    assert seed is not None and (seed.context, seed.input, seed.output) == (4095, 1.0, 2.0)
    assert lookup_model("gpt-3.5-turbo-0613").context == 4096  # type: ignore[union-attr]
    for slug in ("anthropic/claude-sonnet-4", "google/gemini-2.5-flash", "openai/gpt-4o-mini"):
        info = lookup_model(slug)
        assert info is not None and info.context and info.input is not None
