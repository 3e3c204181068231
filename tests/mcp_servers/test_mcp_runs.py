"""Agents with real MCP servers (stdio and streamable HTTP), the model scripted by `FakeServer`."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from agentloop import Agent, ModelInfo, ToolMessage, UsageError, register_model, tool
from agentloop.mcp import MCPServer, MCPServerError, MCPTimeoutError
from agentloop.testing import FakeServer, reply, tool_call

from .conftest import stdio_server

pytestmark = pytest.mark.anyio


def offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools", [])]


def tool_answers(messages: list[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_server_tool_is_offered_and_called(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("add", {"a": 2, "b": 3})), reply("5")])
    result = await Agent(fake.model(), toolsets=[calc]).run("2+3?")
    assert result.output == "5"
    names = offered(fake.requests[0])
    assert {"add", "echo", "fail", "slow", "big_report", "unlock"} <= set(names)
    assert "big.report" not in names  # made valid for the API
    [answer] = tool_answers(result.messages)
    assert json.loads(answer.content) == {"total": 5}
    assert not answer.is_error
    add = next(t for t in fake.requests[0]["tools"] if t["function"]["name"] == "add")
    assert add["function"]["description"] == "Add two integers."
    assert add["function"]["parameters"]["required"] == ["a", "b"]
    fake.assert_done()


async def test_a_renamed_tool_is_called_by_its_server_name(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("big_report", {"size": 3})), reply("ok")])
    result = await Agent(fake.model(), toolsets=[calc]).run("report")
    [answer] = tool_answers(result.messages)
    assert answer.content == "xxx"


async def test_prefixes_keep_servers_apart_and_a_clash_is_refused_before_any_request() -> None:
    fake = FakeServer([tool_call(("one_add", {"a": 1, "b": 1}), ("two_echo", {"text": "hi"})),
                       reply("done")])  # fmt: skip
    servers = [stdio_server(prefix="one_"), stdio_server(prefix="two_")]
    result = await Agent(fake.model(), toolsets=servers).run("go")
    names = offered(fake.requests[0])
    assert "one_add" in names and "two_add" in names
    total, echoed = (a.content for a in tool_answers(result.messages))
    assert (json.loads(total), echoed) == ({"total": 2}, "hi")

    clash = FakeServer([reply("never sent")])
    agent = Agent(clash.model(), toolsets=[stdio_server(), stdio_server()])
    with pytest.raises(UsageError, match="prefix"):
        await agent.run("go")
    assert clash.requests == []


async def test_a_local_tool_of_the_same_name_is_a_clash() -> None:
    def echo(text: str) -> str:
        """Local echo."""
        return text

    fake = FakeServer([reply("never sent")])
    with pytest.raises(UsageError, match="agent's own tools"):
        await Agent(fake.model(), tools=[echo], toolsets=[stdio_server()]).run("go")


async def test_an_error_result_goes_back_to_the_model(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("fail", {"reason": "no"})), reply("sorry")])
    result = await Agent(fake.model(), toolsets=[calc]).run("try")
    assert result.output == "sorry"
    [answer] = tool_answers(result.messages)
    assert answer.is_error
    assert "MCPToolError" in answer.content and "fail" in answer.content
    sent = fake.requests[1]["messages"][-1]
    assert sent["role"] == "tool" and "MCPToolError" in sent["content"]


async def test_unknown_arguments_are_answered_before_the_server_is_asked(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("add", {"a": "two"})), reply("ok")])
    result = await Agent(fake.model(), toolsets=[calc]).run("try")
    [answer] = tool_answers(result.messages)
    assert answer.is_error and "Invalid arguments" in answer.content


async def test_a_call_past_its_timeout_ends_the_run_naming_the_server(http_url: str) -> None:
    for server in (stdio_server(timeout=0.5), MCPServer.http(http_url, timeout=0.5, name="calc")):
        fake = FakeServer([tool_call(("slow", {"seconds": 10})), reply("never")])
        with pytest.raises(MCPTimeoutError) as caught:
            await Agent(fake.model(), toolsets=[server]).run("wait")
        assert caught.value.server == server.name
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.usage is not None and caught.value.usage.requests == 1
        assert tool_answers(caught.value.messages)[0].is_error


async def test_a_server_that_dies_mid_call_ends_the_run_and_leaves_no_process() -> None:
    fake = FakeServer([tool_call(("pid", {})), tool_call(("crash", {})), reply("never")])
    with pytest.raises(MCPServerError, match=r"'calc' failed during a call of 'crash'") as caught:
        await Agent(fake.model(), toolsets=[stdio_server()]).run("go")
    assert caught.value.server == "calc"
    pid = int(json.loads(tool_answers(caught.value.messages)[0].content))
    assert gone(pid)
    assert caught.value.usage is not None and caught.value.usage.requests == 2


async def test_the_child_process_ends_with_the_run() -> None:
    fake = FakeServer([tool_call(("pid", {})), reply("done")])
    result = await Agent(fake.model(), toolsets=[stdio_server()]).run("pid?")
    pid = int(tool_answers(result.messages)[0].content)
    assert pid != os.getpid()
    assert gone(pid)


async def test_a_held_server_is_shared_by_runs_and_closed_with_its_block() -> None:
    server = stdio_server()
    fake = FakeServer([tool_call(("pid", {})), reply("a"), tool_call(("pid", {})), reply("b")])
    agent = Agent(fake.model(), toolsets=[server])
    async with server:
        first = await agent.run("pid?")
        second = await agent.run("pid?")
        pids = {int(tool_answers(r.messages)[0].content) for r in (first, second)}
        assert len(pids) == 1
        assert not gone(next(iter(pids)))
    assert gone(next(iter(pids)))


async def test_a_server_that_cannot_start_is_a_typed_error() -> None:
    missing = MCPServer.stdio("/nonexistent/mcp-server-binary", name="ghost")
    fake = FakeServer([reply("never sent")])
    with pytest.raises(MCPServerError, match="'ghost' could not start") as caught:
        await Agent(fake.model(), toolsets=[missing]).run("go")
    assert caught.value.server == "ghost"
    assert fake.requests == []


async def test_changed_tools_are_listed_again_before_the_next_request(calc: MCPServer) -> None:
    door = uuid.uuid4().hex[:8]  # the HTTP server outlives the test: a tool of its own
    secret = f"secret_{door}"
    script = [tool_call(("unlock", {"door": door})), tool_call((secret, {})), reply("swordfish")]
    fake = FakeServer(script)
    result = await Agent(fake.model(), toolsets=[calc]).run("unlock it")
    assert secret not in offered(fake.requests[0])
    assert secret in offered(fake.requests[1])
    assert [a.content for a in tool_answers(result.messages)][-1] == "swordfish"


async def test_a_long_result_is_cut_visibly_and_an_image_is_named(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("big_report", {"size": 5000}), ("logo", {})), reply("ok")])
    result = await Agent(fake.model(), toolsets=[calc], max_tool_result_chars=100).run("go")
    report, image = tool_answers(result.messages)
    assert report.content.startswith("x" * 100)
    assert "[... truncated: 4900 of 5000 characters not shown]" in report.content
    assert image.content.startswith("[image 1: image/png,")
    assert image.content.endswith("not shown: this model does not take images]")


async def test_a_servers_image_is_shown_to_a_model_that_takes_images(calc: MCPServer) -> None:
    register_model(ModelInfo("vision-for-mcp", images=True))
    fake = FakeServer([tool_call(("logo", {})), reply("a logo")], model_name="vision-for-mcp")
    await Agent(fake.model(), toolsets=[calc]).run("go")
    sent = fake.requests[1]["messages"]
    assert sent[2]["content"] == "[image 1: image/png, 70 bytes; shown in the next message]"
    label, image = sent[3]["content"]
    assert label["text"] == "Image 1 from the tool 'logo' (call call_0_logo):"
    assert image["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


async def test_an_agent_handed_the_run_connects_its_own_servers(calc: MCPServer) -> None:
    script = [tool_call(("transfer_to_math", {})), tool_call(("add", {"a": 2, "b": 3})), reply("5")]
    fake = FakeServer(script)
    math = Agent(fake.model(), name="math", toolsets=[calc])
    result = await Agent(fake.model(), name="triage", handoffs=[math]).run("2+3?")
    assert (result.output, result.agent) == ("5", "math")
    assert "add" not in offered(fake.requests[0])
    assert {"add", "transfer_to_math"} - set(offered(fake.requests[1])) == {"transfer_to_math"}
    assert json.loads(tool_answers(result.messages)[-1].content) == {"total": 5}


async def test_a_run_resumed_while_a_handed_agent_answers_connects_its_servers() -> None:
    @tool(requires_approval=True)
    def confirm() -> str:
        """Confirm the sum."""
        return "confirmed"

    def agents(fake: FakeServer) -> Agent[str]:
        math = Agent(fake.model(), name="math", tools=[confirm], toolsets=[stdio_server()],
                     approver="defer")  # fmt: skip
        return Agent(fake.model(), name="triage", handoffs=[math], approver="defer")

    first = FakeServer([tool_call(("transfer_to_math", {})), tool_call(("confirm", {}))])
    paused = await agents(first).run("2+3?")
    [waiting] = paused.pending_approvals
    second = FakeServer([tool_call(("add", {"a": 2, "b": 3})), reply("5")])
    result = await agents(second).resume(paused.state_json(), {waiting.id: True})
    assert (result.output, result.agent) == ("5", "math")
    assert "add" in offered(second.requests[0])
    assert {k: u.requests for k, u in result.usage_by_agent.items()} == {"triage": 1, "math": 3}
    assert json.loads(tool_answers(result.messages)[-1].content) == {"total": 5}


async def test_a_streamed_run_uses_server_tools(calc: MCPServer) -> None:
    fake = FakeServer([tool_call(("echo", {"text": "streamed"})), reply("done")])
    agent = Agent(fake.model(), toolsets=[calc])
    async with agent.run_stream("go") as stream:
        async for _ in stream:
            pass
    assert stream.result.output == "done"
    assert tool_answers(stream.result.messages)[0].content == "streamed"


def test_headers_stay_out_of_the_repr(http_url: str) -> None:
    server = MCPServer.http(http_url, headers={"Authorization": "Bearer sk-very-secret"})
    assert "sk-very-secret" not in repr(server)
    assert server.name == "127.0.0.1"
