"""Silent-drop checks: features a server drops without a word are found and avoided."""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs
from support.local_server import Reply
from support.quirk_runs import (
    ANSWER,
    PROMPT,
    add,
    learned,
    model_for,
    run_twice,
    system_text,
    tool_ran,
)
from support.quirk_server import (
    CONSTANT_USAGE,
    DROP_TOOL_RESULTS,
    DROP_TOOLS,
    QuirkServer,
    is_check,
)

from agentloop import Agent, TextDelta, ToolArgumentsDelta, ToolCallFinished, ToolCallStarted
from agentloop._wire.profiles import OPTIMISTIC_PROFILE

pytestmark = pytest.mark.anyio


async def test_a_normal_server_costs_one_check_request_per_model() -> None:
    """Tools that are called and results that are counted: one padded check, then nothing."""
    with QuirkServer() as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    assert sent == 3 and len(server.bodies) == 5
    assert [is_check(b) for b in server.bodies] == [False, False, True, False, False]
    check = server.bodies[2]
    assert check["messages"][-1]["role"] == "tool"
    assert check["messages"][-1]["content"].startswith("4 (checked)")
    assert learned(logs) == [] and model.profile == OPTIMISTIC_PROFILE


async def test_tools_dropped_silently_are_prompted() -> None:
    """A template with no place for tools: the model answers without calling one, and the
    prompt costs as much without the tools. One request without them and one control, then
    the request is sent again with prompted tools."""
    with QuirkServer({DROP_TOOLS}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    assert tool_ran(first.messages) and tool_ran(second.messages)
    bodies = server.bodies
    assert sent == 5 and len(bodies) == 7
    assert [is_check(b) for b in bodies[:5]] == [False, True, True, False, False]
    assert "tools" not in bodies[1]  # the same request without the tools
    assert "tools" in bodies[2] and "(checked)" in bodies[2]["messages"][-1]["content"]  # control
    for body in (bodies[3], bodies[5]):  # the resend, and the next run's first request
        assert "tools" not in body and "- add:" in system_text(body)
    assert learned(logs) == ["tools"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(tool_mode="prompted")


async def test_tool_results_dropped_silently_go_as_user_turns() -> None:
    with QuirkServer({DROP_TOOL_RESULTS}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    bodies = server.bodies
    assert sent == 5 and len(bodies) == 7
    assert [is_check(b) for b in bodies[:5]] == [False, False, True, True, False]
    for body in (bodies[4], bodies[6]):
        assert "tools" in body  # tools stay native
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][-1]["content"].startswith("Result of add (call call_")
        assert "tool_calls" in body["messages"][1]
    assert learned(logs) == ["tool_results"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(tool_results_as_text=True)


@pytest.mark.parametrize("dropped", [DROP_TOOLS, DROP_TOOL_RESULTS])
async def test_constant_usage_shows_nothing_and_nothing_is_learned(dropped: str) -> None:
    """A server whose counts do not follow the prompt: the control says so; no drop concluded."""
    with QuirkServer({CONSTANT_USAGE, dropped}) as server, capture_logs() as logs:
        model = model_for(server)
        result = await Agent(model, tools=[add]).run(PROMPT)
    assert result.output == ANSWER
    checks = [is_check(b) for b in server.bodies]
    if dropped == DROP_TOOLS:  # no call: the no-tools check, the control
        assert checks == [False, True, True]
    else:  # the call, the answer, the padded check, the control
        assert checks == [False, False, True, True]
    assert learned(logs) == []
    assert model.profile == OPTIMISTIC_PROFILE


@pytest.mark.parametrize(
    "failure",
    [
        Reply(503, json_body={"error": {"message": "busy"}}),
        Reply(500, json_body={"error": {"message": "validation error: bad request"}}),
        Reply(200, body="{"),
        Reply.drop(),
    ],
    ids=["503", "500-about-the-request", "not-json", "dropped"],
)
async def test_failing_checks_never_fail_the_caller(failure: Reply) -> None:
    """A check request that fails (an error status, a body that is not JSON, a dropped
    connection) is sent once, never retried, shows nothing, and the run goes on."""
    server = QuirkServer()
    answer = server.handler
    assert answer is not None

    def flaky(request: Any) -> Reply:
        return failure if is_check(json.loads(request.body)) else answer(request)

    server.handler = flaky
    with server, capture_logs() as logs:
        model = model_for(server)
        result = await Agent(model, tools=[add]).run(PROMPT)
        assert result.output == ANSWER
        assert [is_check(b) for b in server.bodies] == [False, False, True]
        again = await Agent(model, tools=[add]).run(PROMPT)  # done once, even though it failed
        assert again.output == ANSWER
    assert len(server.bodies) == 5
    assert learned(logs) == [] and model.profile == OPTIMISTIC_PROFILE
    assert not any(e["event"] == "request_retry" for e in logs)


async def test_a_dropped_check_response_is_no_answer_either() -> None:
    server = QuirkServer({DROP_TOOLS})
    answer = server.handler
    assert answer is not None

    def broken(request: Any) -> Reply:
        return Reply.drop() if is_check(json.loads(request.body)) else answer(request)

    server.handler = broken
    with server, capture_logs() as logs:
        model = model_for(server)
        result = await Agent(model, tools=[add]).run(PROMPT)
    assert result.output == ANSWER
    assert [is_check(b) for b in server.bodies] == [False, True]  # no control after no answer
    assert learned(logs) == [] and model.profile.tool_mode == "native"


async def test_a_streamed_run_checks_before_each_kind_of_request_once() -> None:
    """Before a stream (whose deltas cannot be taken back) both sides are asked: tools offered
    and not (two checks), then results plain and padded (two more): six requests in all."""
    with QuirkServer() as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            async for _ in stream:
                pass
    assert stream.result.output == ANSWER
    checks = [is_check(b) for b in server.bodies]
    assert checks == [True, True, False, True, True, False]
    assert learned(logs) == []


async def test_a_streamed_prompted_run_gives_tool_call_events_not_json_text() -> None:
    """Tools dropped silently, found before the stream; the prompted reply is held back and
    given as ToolCallStarted / ToolArgumentsDelta, the ``{"answer"}`` as its text."""
    with QuirkServer({DROP_TOOLS}, chunk_chars=3) as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            events = [event async for event in stream]
    assert stream.result.output == ANSWER
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    arguments = [e for e in events if isinstance(e, ToolArgumentsDelta)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert [e.name for e in started] == ["add"]
    assert json.loads("".join(a.text for a in arguments)) == {"a": 2, "b": 2}
    assert arguments[0].id == started[0].id == finished[0].id
    assert finished[0].result == "4" and not finished[0].is_error
    assert texts == [ANSWER]  # no raw JSON, no {"answer": ...}
    assert learned(logs) == ["tools"]
    # offered, without tools, control; then the two streams (the prompted ones)
    assert [is_check(b) for b in server.bodies] == [True, True, True, False, False]
    assert all(b.get("stream") for b in server.bodies[3:])
