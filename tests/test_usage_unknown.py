"""A server that reports no usage (llama-cpp-python's, when it streams): "unknown", never 0/0.

Offline, through the real response parsing: `FakeServer` with ``report_usage=False`` sends a body
without ``usage`` and a stream without a usage chunk; the CLI runs against a real HTTP server on
127.0.0.1 that streams no usage either.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.local_server import LocalServer, Recorded, Reply, sse

from agentloop import (
    LLAMA_CPP_PROFILE,
    Agent,
    AssistantMessage,
    Limits,
    ModelInfo,
    ModelResponse,
    RequestUsage,
    TurnFinished,
    Usage,
    UsageError,
    UsageLimitExceeded,
    register_model,
    tool,
)
from agentloop._cli import main
from agentloop._durable import response_from_json, response_to_json
from agentloop.batch import BatchSummary, run_batch
from agentloop.testing import FakeServer, reply, tool_call
from agentloop.testing import Reply as Scripted

UNKNOWN = "tokens unknown (the server reported none)"


def silent(content: str) -> Scripted:
    """A text answer whose usage the server does not report."""
    return reply(content, report_usage=False)


# --- the usage of one request ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_body_without_usage_is_unreported() -> None:
    with FakeServer([silent("hi")], model_name="my-local") as server:
        result = await Agent(server.model()).run("hello")
    assert result.usage.requests == 1 and result.usage.unreported_requests == 1
    assert not result.usage.fully_reported
    assert result.usage.describe_tokens() == UNKNOWN
    assert result.requests[0].usage_reported is False
    assert result.timing.output_tokens_per_second is None


@pytest.mark.anyio
async def test_a_stream_without_a_usage_chunk_is_unreported() -> None:
    # llama-cpp-python's profile does not ask for stream usage; the server sends none anyway
    with FakeServer([silent("hi there")], model_name="my-local") as server:
        agent = Agent(server.model(LLAMA_CPP_PROFILE))
        async with agent.run_stream("hello") as stream:
            turns = [e async for e in stream if isinstance(e, TurnFinished)]
    assert "stream_options" not in server.requests[0]
    assert [t.response.usage for t in turns] == [RequestUsage(reported=False)]
    assert [t.stats.usage_reported for t in turns] == [False]
    assert stream.result.usage.unreported_requests == 1
    assert stream.result.usage.describe_tokens() == UNKNOWN


@pytest.mark.anyio
async def test_a_stream_with_a_usage_chunk_is_reported() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    with FakeServer([reply("hi there", usage=usage)]) as server:
        async with Agent(server.model()).run_stream("hello") as stream:
            turns = [e async for e in stream if isinstance(e, TurnFinished)]
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert turns[0].response.usage == RequestUsage(12, 3)
    assert turns[0].response.usage.reported
    assert stream.result.usage.fully_reported
    assert stream.result.usage.describe_tokens() == "12/3 tokens in/out"


@pytest.mark.anyio
async def test_some_requests_reported_reads_at_least() -> None:
    calls = tool_call(("lookup", {"q": "x"})).tool_calls
    first = Scripted(tool_calls=calls, usage={"prompt_tokens": 120, "completion_tokens": 30})

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return q * 3

    with FakeServer([first, silent("found it")]) as server:
        result = await Agent(server.model(), tools=[lookup]).run("go")
    usage = result.usage
    assert (usage.requests, usage.unreported_requests) == (2, 1)
    assert (usage.input_tokens, usage.output_tokens) == (120, 30)
    assert usage.describe_tokens() == "at least 120/30 tokens in/out (1 of 2 requests unreported)"
    assert [r.usage_reported for r in result.requests] == [True, False]


def test_usage_totals_and_their_description() -> None:
    assert Usage().describe_tokens() == "0/0 tokens in/out" and Usage().fully_reported
    usage = Usage()
    usage.add_request(RequestUsage(10, 2))
    usage.add_request(RequestUsage(reported=False))
    total = Usage()
    total.add(usage)
    total.add(usage)
    assert (total.requests, total.unreported_requests, total.input_tokens) == (4, 2, 20)
    assert total.describe_tokens() == "at least 20/4 tokens in/out (2 of 4 requests unreported)"
    silent_only = Usage()
    silent_only.add_request(RequestUsage(reported=False))
    assert silent_only.describe_tokens() == UNKNOWN


def test_the_flag_round_trips_through_durable_json() -> None:
    response = ModelResponse(AssistantMessage("hi"), RequestUsage(reported=False))
    data = response_to_json(response)
    assert data["usage"]["reported"] is False
    assert response_from_json(json.loads(json.dumps(data))) == response
    old = dict(data, usage={k: v for k, v in data["usage"].items() if k != "reported"})
    assert response_from_json(old).usage.reported  # data written before the field: reported


# --- limits and cost ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_caps_count_estimates_when_nothing_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_answer = "word " * 400  # about 500 tokens at four characters a token
    with FakeServer([silent(long_answer)], model_name="my-local") as server:
        agent = Agent(server.model(), limits=Limits(max_output_tokens=100))
        with (
            caplog.at_level(logging.WARNING, "agentloop"),
            pytest.raises(UsageLimitExceeded) as info,
        ):
            await agent.run("talk")
    assert info.value.limit == "max_output_tokens" and info.value.observed > 100
    assert "estimated where the server reported none" in str(info.value)
    assert sum("usage_unreported" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.anyio
async def test_the_unreported_warning_is_logged_once_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    script = [tool_call(("ping", {})), tool_call(("ping", {})), reply("done")]
    script = [Scripted(s.content, s.tool_calls, report_usage=False) for s in script]
    with FakeServer(script, model_name="my-local") as server:
        agent = Agent(server.model(), tools=[ping], limits=Limits(max_total_tokens=100_000))
        with caplog.at_level(logging.WARNING, "agentloop"):
            result = await agent.run("go")
    assert result.usage.unreported_requests == 3
    assert sum("usage_unreported" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.anyio
async def test_without_token_caps_nothing_is_estimated_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeServer([silent("hi")], model_name="my-local") as server:
        with caplog.at_level(logging.WARNING, "agentloop"):
            await Agent(server.model(), limits=Limits()).run("hello")
    assert not any("usage_unreported" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_priced_model_without_usage_has_an_unknown_cost() -> None:
    with FakeServer([silent("hi")], model_name="gpt-4o-mini") as server:
        result = await Agent(server.model()).run("hello")
    assert result.cost is None  # not $0: nothing was reported to price
    with FakeServer([silent("hi")], model_name="gpt-4o-mini") as server:
        agent = Agent(server.model(), limits=Limits(max_cost=1.0))
        with pytest.raises(UsageError, match="reported no usage"):
            await agent.run("hello")


@pytest.mark.anyio
async def test_a_free_model_without_usage_still_costs_nothing() -> None:
    register_model(ModelInfo("test-free-local-model", context=4096, input=0.0, output=0.0))
    with FakeServer([silent("hi")], model_name="test-free-local-model") as server:
        result = await Agent(server.model(), limits=Limits(max_cost=0.01)).run("hello")
    assert result.cost == 0.0


# --- what people read -----------------------------------------------------------------------


def test_batch_summary_says_unknown() -> None:
    summary = BatchSummary(succeeded=2, usage=Usage(requests=2, unreported_requests=2))
    assert f"requests 2, {UNKNOWN}, retries 0" in str(summary)
    partial = BatchSummary(usage=Usage(requests=3, input_tokens=9, unreported_requests=1))
    assert "at least 9/0 tokens in/out (1 of 3 requests unreported)" in str(partial)


@pytest.mark.anyio
async def test_batch_records_flag_unreported_requests(tmp_path: Path) -> None:
    with FakeServer([silent("a"), reply("b")], model_name="my-local") as server:
        out = tmp_path / "out.jsonl"
        summary = await run_batch(
            Agent(server.model()), ["one", "two"], out, concurrency=1, progress=False
        )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("unreported_requests") for r in records] == [1, None]
    assert summary.usage.unreported_requests == 1
    assert "(1 of 2 requests unreported)" in str(summary)


def _no_usage_answer(recorded: Recorded) -> Reply:
    body = recorded.json()
    text = f"Echo {body['messages'][-1]['content']}"
    if not body.get("stream"):
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return Reply(json_body={"id": "x", "model": "m", "choices": [choice]})
    base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": {"content": word}}]}
        for word in re.findall(r"\S+\s*", text)
    ]
    chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return Reply.stream(sse(*chunks))  # no usage chunk, whatever the request asked


@pytest.fixture
def no_usage_server() -> Iterator[LocalServer]:
    with LocalServer(_no_usage_answer) as running:
        yield running


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["streamed", "whole"])
def test_cli_chat_says_the_usage_is_unknown(
    no_usage_server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: list[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n/exit\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = main(["chat", "--model", "m", "--base-url", no_usage_server.base_url, *mode])
    assert code == 0
    text = out.getvalue()
    assert "agent> Echo hello" in text
    assert f"(1 requests, {UNKNOWN}, cost unknown, " in text
    assert "0/0 tokens" not in text
    assert capsys.readouterr().err == ""  # stderr is no terminal and the turn was quick
    assert bool(no_usage_server.requests[0].json().get("stream")) == (not mode)
