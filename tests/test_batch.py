"""agentloop.batch: concurrency, retries, sinks, resume, stopping, flat memory, unknown usage."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel
from support.unreported import UNKNOWN, silent

from agentloop import DEFAULT_PROFILE, Agent, OpenAICompatible, Usage, UsageError
from agentloop.batch import (
    BatchItem,
    BatchProgress,
    BatchSummary,
    JSONLSink,
    ProgressBar,
    run_batch,
    run_batch_sync,
)
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


class Person(BaseModel):
    name: str
    age: int


class Server:
    """A chat-completions handler that extracts ``NAME is AGE`` from the last user message.

    Messages containing ``status=NNN`` are answered with that status (``once`` only the first
    time); `seen` counts requests per prompt and `peak` the most requests in flight at once.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: dict[str, int] = {}
        self.active = 0
        self.peak = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        self.seen[prompt] = self.seen.get(prompt, 0) + 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.active -= 1
        status = re.search(r"status=(\d+)( once)?", prompt)
        if status and (not status.group(2) or self.seen[prompt] == 1):
            error = {"message": f"injected {status.group(1)}", "type": "x", "code": None}
            return httpx.Response(int(status.group(1)), json={"error": error})
        name, age = re.search(r"(\w+) is (\d+)", prompt).groups()  # type: ignore[union-attr]
        arguments = json.dumps({"name": name, "age": int(age)})
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "final_result", "arguments": arguments},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            },
        )


def agent_for(server: Server) -> Agent[Person]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="http://t/v1")
    model = OpenAICompatible(
        "gpt-4o-mini",
        base_url="http://t/v1",
        api_key="sk-test",
        http_client=client,
        max_retries=0,
        profile=DEFAULT_PROFILE,  # the server answers with the output tool
    )
    return Agent(model, output_type=Person)


def docs(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"doc-{i}", "text": f"Person{i} is {20 + i % 50}"} for i in range(start, n)]


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_every_input_gets_one_result_with_bounded_concurrency(tmp_path: Path) -> None:
    server = Server(delay=0.01)
    out = tmp_path / "out.jsonl"
    summary = await run_batch(agent_for(server), docs(40), out, concurrency=4, progress=False)
    records = lines(out)
    assert sorted(r["key"] for r in records) == sorted(f"doc-{i}" for i in range(40))
    by_key = {r["key"]: r for r in records}
    assert by_key["doc-7"]["output"] == {"name": "Person7", "age": 27}
    assert server.peak == 4
    assert (summary.succeeded, summary.failed, summary.skipped) == (40, 0, 0)
    assert summary.usage.requests == 40 and summary.usage.input_tokens == 4_000
    assert summary.cost == pytest.approx(sum(r["cost"] for r in records))
    assert summary.cost > 0 and summary.cost_unknown == 0
    assert not (tmp_path / "out.failures.jsonl").exists()


async def test_transient_failures_are_retried_and_permanent_ones_recorded(tmp_path: Path) -> None:
    server = Server()
    inputs = [
        {"id": "flaky", "text": "Ana is 31 status=500 once"},
        {"id": "bad", "text": "Bob is 40 status=400"},
        {"id": "fine", "text": "Eve is 22"},
    ]
    out = tmp_path / "r.jsonl"
    summary = await run_batch(agent_for(server), inputs, out, retries=2, progress=False)
    results = {r["key"]: r for r in lines(out)}
    failures = lines(tmp_path / "r.failures.jsonl")
    assert set(results) == {"flaky", "fine"}
    assert results["flaky"]["attempts"] == 2 and results["flaky"]["output"]["age"] == 31
    assert [f["key"] for f in failures] == ["bad"]
    assert failures[0]["error"] == "BadRequestError" and failures[0]["attempts"] == 1
    assert "injected 400" in failures[0]["message"]
    assert server.seen["Bob is 40 status=400"] == 1  # a 400 is not retried
    assert summary.errors == {"BadRequestError": 1} and summary.failed == 1


async def test_retries_are_bounded(tmp_path: Path) -> None:
    server = Server()
    summary = await run_batch(
        agent_for(server), [{"id": "x", "text": "A is 1 status=503"}], None, retries=1
    )
    assert server.seen["A is 1 status=503"] == 2
    assert summary.errors == {"InternalServerError": 1}


async def test_resume_skips_finished_items_and_cuts_a_torn_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = Server()
    await run_batch(agent_for(first), docs(10), out, progress=False)
    with out.open("a") as file:  # a crash in the middle of writing doc-10's line
        file.write('{"key":"doc-10","outp')
    second = Server()
    summary = await run_batch(agent_for(second), docs(15), out, progress=False)
    assert (summary.skipped, summary.succeeded) == (10, 5)
    assert sorted(second.seen) == sorted(d["text"] for d in docs(15, start=10))
    keys = [r["key"] for r in lines(out)]  # every line parses: the torn one was cut
    assert sorted(keys) == sorted(f"doc-{i}" for i in range(15))


async def test_resume_false_runs_everything_again(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    await run_batch(agent_for(Server()), docs(3), out)
    again = Server()
    summary = await run_batch(agent_for(again), docs(3), out, resume=False)
    assert summary.skipped == 0 and len(again.seen) == 3


async def test_a_fatal_error_stops_new_items_and_leaves_them_for_resume(tmp_path: Path) -> None:
    server = Server()
    inputs = [{"id": "k0", "text": "A is 1 status=401"}, *docs(50)]
    out = tmp_path / "out.jsonl"
    summary = await run_batch(agent_for(server), inputs, out, concurrency=2)
    assert summary.stopped is not None and "AuthenticationError" in summary.stopped
    assert summary.finished < 10  # the other 50 did not all run into the same wall
    recorded = {r["key"] for r in lines(out)} | {
        f["key"] for f in lines(tmp_path / "out.failures.jsonl")
    }
    assert len(recorded) == summary.finished


async def test_max_cost_stops_the_batch(tmp_path: Path) -> None:
    server = Server()
    one = 100 * 0.15e-6 + 10 * 0.6e-6  # gpt-4o-mini: 100 tokens in, 10 out
    summary = await run_batch(agent_for(server), docs(30), None, concurrency=1, max_cost=one * 5)
    assert summary.succeeded == 5 and summary.stopped and "max_cost" in summary.stopped
    assert len(server.seen) == 5


async def test_inputs_are_pulled_lazily_so_memory_stays_flat() -> None:
    server = Server()
    produced = 0
    ahead: list[int] = []
    finished = [0]

    async def endless() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for i in range(2_000):
            ahead.append(produced - finished[0])
            produced += 1
            yield {"id": str(i), "text": f"P is {i}"}

    def progress(p: BatchProgress) -> None:
        finished[0] = p.finished

    summary = await run_batch(agent_for(server), endless(), None, concurrency=3, progress=progress)
    assert summary.succeeded == 2_000
    assert max(ahead) <= 3 + 1  # the items running plus the one waiting to be taken


async def test_items_of_every_kind_and_a_prompt_template(tmp_path: Path) -> None:
    server = Server()
    inputs: list[Any] = ["Ana is 3", BatchItem("custom", "Bob is 4"), {"who": "Cy", "age": 5}]

    def prompt(raw: Any) -> str:
        return raw if isinstance(raw, str) else f"{raw['who']} is {raw['age']}"

    out = tmp_path / "o.jsonl"
    summary = await run_batch(agent_for(server), inputs, out, prompt=prompt)
    outputs = {r["key"]: r["output"]["name"] for r in lines(out)}
    assert outputs == {"0": "Ana", "custom": "Bob", "2": "Cy"}
    assert summary.succeeded == 3


async def test_an_item_without_a_prompt_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    summary = await run_batch(agent_for(Server()), [{"id": "n", "body": 1}, "Ana is 3"], out)
    assert summary.succeeded == 1 and summary.errors == {"UsageError": 1}
    failure = lines(tmp_path / "o.failures.jsonl")[0]
    assert failure["key"] == "n" and "prompt=" in failure["message"]


async def test_progress_bar_draws_the_final_state(tmp_path: Path) -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, label="extract")
    inputs = [*docs(6), {"id": "bad", "text": "X is 1 status=400"}]
    await run_batch(agent_for(Server()), inputs, None, progress=bar)
    bar.close()
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("extract [") and "7/7" in last and "ok 6 failed 1" in last


def test_run_batch_sync(tmp_path: Path) -> None:
    summary = run_batch_sync(agent_for(Server()), docs(3), tmp_path / "s.jsonl")
    assert summary.succeeded == 3 and "succeeded 3" in str(summary)


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        run_batch_sync(agent_for(Server()), [], None, concurrency=0)
    with pytest.raises(UsageError, match="two different files"):
        JSONLSink("a.jsonl", "a.jsonl")


async def test_run_with_retries_counts_the_failed_attempts_too(monkeypatch) -> None:
    # An invalid answer was a paid request: the item's usage and cost include it, and the
    # retry waits ITEM_RETRY's backoff (recorded here instead of slept).
    from agentloop import Agent, OutputValidationError
    from agentloop.batch import ITEM_RETRY, ItemTally, run_with_retries
    from agentloop.testing import FakeServer, reply

    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("agentloop.batch.anyio.sleep", no_sleep)
    answers = [reply({"name": "Ana"}), reply({"name": "Ana", "age": 31})]
    server = FakeServer(answers, model_name="gpt-4o-mini")  # a priced model
    agent = Agent(server.model(), output_type=Person, output_retries=0)
    tally = ItemTally()
    result = await run_with_retries(agent, "Ana is 31", tally, retries=1)
    assert result.output == Person(name="Ana", age=31)
    assert tally.attempts == 2 and tally.usage.requests == 2
    assert result.cost and tally.known_cost is not None and tally.known_cost > result.cost
    assert len(waits) == 1 and 0.75 * ITEM_RETRY.initial_delay <= waits[0] <= 0.5

    server.add(reply({"name": "Bob"}))
    again = ItemTally()
    with pytest.raises(OutputValidationError):
        await run_with_retries(agent, "Bob", again, retries=0)
    assert (again.attempts, again.usage.requests) == (1, 1)


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
