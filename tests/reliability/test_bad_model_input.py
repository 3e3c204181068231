"""Bad input from the model: each case ends in a bounded, explained outcome, never a crash or a
hang. Whole runs over the fault server; the model's turns are scripted."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from agentloop import (
    Agent,
    Limits,
    OutputValidationError,
    ToolExecutionError,
    UsageLimitExceeded,
    tool,
)
from reliability.helpers import calls_of, make_model, usage_of

from faultserver import ok, tool_call  # isort: skip

pytestmark = pytest.mark.anyio
RAN: list[str] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    RAN.append(f"add({a},{b})")
    return a + b


@tool
def dump(size: int) -> str:
    """Return `size` characters."""
    RAN.append("dump")
    return "z" * size


@tool
def explode() -> str:
    """Always fails."""
    RAN.append("explode")
    raise RuntimeError("disk on fire")


class Sum(BaseModel):
    total: int


def calls(*items: tuple[str, object], prefix: str = "c") -> object:
    built = [tool_call(name, args, f"{prefix}{i}") for i, (name, args) in enumerate(items)]
    return ok(None, built)


async def run(server, plans, *, timeout_bound: float = 5.0, **agent_options):
    RAN.clear()
    server.script(*plans)
    model = make_model(server)
    agent = Agent(model, tools=[add, dump, explode], **agent_options)
    started = time.monotonic()
    try:
        return await agent.run("go")
    finally:
        await model.aclose()
        assert time.monotonic() - started < timeout_bound
        assert server.wait_closed(3)


def tool_answers(messages):
    return [m for m in messages if m.role == "tool"]


@pytest.mark.parametrize(
    "raw",
    ['{"a": 2, "b":', "not json", '{"a": "two", "b": 3}', "[1, 2]", '{"a": 1}', "null x"],
)
async def test_malformed_arguments_are_explained_then_fixed(server, raw):
    plans = [calls(("add", raw)), calls(("add", {"a": 2, "b": 3})), ok("done")]
    result = await run(server, plans)
    assert result.output == "done"
    assert RAN == ["add(2,3)"]
    first = tool_answers(result.messages)[0]
    assert first.is_error
    assert "Invalid arguments for tool 'add'" in first.content
    assert result.usage.retries == 1
    # the explanation went back to the model in the second request
    sent = server.requests[1].json()["messages"][-1]
    assert sent["role"] == "tool"
    assert "Invalid arguments" in sent["content"]


async def test_malformed_arguments_forever_end_with_a_typed_error(server):
    plans = [calls(("add", '{"a": ')) for _ in range(5)]
    with pytest.raises(ToolExecutionError, match="exceeded its retry budget") as info:
        await run(server, plans)
    assert RAN == []
    assert info.value.tool_name == "add"
    assert info.value.usage is not None
    assert usage_of(info.value).requests == 3
    answers = tool_answers(info.value.messages)
    assert len(answers) == 3
    assert all(a.is_error for a in answers)


async def test_huge_garbage_arguments_give_a_short_explanation(server):
    garbage = '{"a": ' + "9" * 2_000_000 + "x"
    plans = [calls(("add", garbage)), ok("done")]
    result = await run(server, plans)
    answer = tool_answers(result.messages)[0]
    assert answer.is_error
    assert len(answer.content) < 1_000
    assert len(server.requests[1].body) < len(garbage) + 100_000  # one copy: the call itself


async def test_hallucinated_tool_is_explained_then_recovered(server):
    plans = [calls(("delete_file", {"path": "/"})), calls(("add", {"a": 1, "b": 1})), ok("2")]
    result = await run(server, plans)
    assert result.output == "2"
    unknown = tool_answers(result.messages)[0]
    assert unknown.is_error
    assert "Unknown tool 'delete_file'" in unknown.content
    assert "add, dump, explode" in unknown.content


async def test_hallucinated_tools_forever_end_with_a_typed_error(server):
    plans = [calls(("rm_rf", {})) for _ in range(5)]
    with pytest.raises(ToolExecutionError, match="retry budget") as info:
        await run(server, plans)
    assert info.value.tool_name == "rm_rf"
    assert usage_of(info.value).requests == 3


async def test_duplicate_and_empty_ids_in_one_turn_are_made_unique(server):
    first = ok(None, [tool_call("add", {"a": 1, "b": 2}, "same"),
                      tool_call("add", {"a": 3, "b": 4}, "same"),
                      tool_call("add", {"a": 5, "b": 6}, ""),
                      tool_call("explode", {}, "")])  # fmt: skip
    result = await run(server, [first, ok("done")])
    ids = [c.id for c in calls_of(result.messages[1])]
    assert len(set(ids)) == 4
    assert ids[:2] == ["same", "same_2"]
    answers = tool_answers(result.messages)
    assert [a.tool_call_id for a in answers] == ids
    assert [a.content for a in answers[:3]] == ["3", "7", "11"]
    assert answers[3].is_error
    assert "disk on fire" in answers[3].content


async def test_a_tool_called_in_a_loop_is_stopped(server):
    plans = [calls(("add", {"a": 2, "b": 2}), prefix=f"t{n}") for n in range(10)]
    with pytest.raises(UsageLimitExceeded) as info:
        await run(server, plans)
    error = info.value
    assert error.limit == "max_repeated_calls"
    assert RAN == ["add(2,2)"]  # the repeats were answered with its result, not run again
    last = error.messages[-1]
    assert last.role == "tool"
    assert "Not run" in last.content
    # every call id in the transcript is answered
    asked = [c.id for m in error.messages if m.role == "assistant" for c in calls_of(m)]
    assert asked == [m.tool_call_id for m in tool_answers(error.messages)]


async def test_a_tool_called_in_a_loop_with_new_arguments_hits_max_requests(server):
    plans = [calls(("add", {"a": n, "b": 1}), prefix=f"t{n}") for n in range(8)]
    with pytest.raises(UsageLimitExceeded) as info:
        await run(server, plans, limits=Limits(max_requests=5))
    assert info.value.limit == "max_requests"
    assert len(RAN) == 5
    assert usage_of(info.value).requests == 5


async def test_a_20_mb_tool_result_is_truncated_with_a_marker(server):
    plans = [calls(("dump", {"size": 20_000_000})), ok("done")]
    result = await run(server, plans, max_tool_result_chars=10_000)
    answer = tool_answers(result.messages)[0]
    assert len(answer.content) < 10_200
    assert "truncated: 19990000 of 20000000 characters not shown" in answer.content
    assert len(server.requests[1].body) < 50_000


async def test_a_20_mb_tool_result_with_the_default_cap(server):
    plans = [calls(("dump", {"size": 20_000_000})), ok("done")]
    result = await run(server, plans)
    assert len(tool_answers(result.messages)[0].content) < 51_000
    assert len(server.requests[1].body) < 100_000


@pytest.mark.parametrize(
    "answer",
    [
        ok('{"total": "many"}'),
        ok("not json at all"),
        ok(None, [tool_call("final_result", '{"total": ')]),
        ok(None, [tool_call("final_result", {"wrong": 1})]),
    ],
    ids=["bad-type", "text", "cut-json", "wrong-field"],
)
async def test_output_that_never_validates(server, answer):
    with pytest.raises(OutputValidationError) as info:
        await run(server, [answer] * 4, output_type=Sum, output_retries=2)
    error = info.value
    assert "stayed invalid after 2 re-asks" in error.message
    assert error.errors
    assert usage_of(error).requests == 3
    assert usage_of(error).retries == 2
    assert len(server.requests) == 3


async def test_output_valid_on_the_second_try(server):
    good = ok(None, [tool_call("final_result", {"total": 5}, "f2")])
    result = await run(server, [ok("five"), good], output_type=Sum)
    assert result.output == Sum(total=5)
    assert result.usage.retries == 1
    reask = server.requests[1].json()["messages"][-1]
    assert "final_result" in reask["content"]


async def test_a_failing_tool_is_reported_to_the_model(server):
    result = await run(server, [calls(("explode", {})), ok("sorry")])
    assert result.output == "sorry"
    answer = tool_answers(result.messages)[0]
    assert answer.is_error
    assert answer.content == "Tool 'explode' failed: RuntimeError: disk on fire"
    sent = server.requests[1].json()["messages"][-1]
    assert json.dumps(sent).count("disk on fire") == 1
