"""DBOS with approvals that wait: runs paused for a decision survive a killed worker.

A worker starts runs whose lookup needs approval (``approver="defer"``); each run pauses before
the call and publishes it. The worker is killed (SIGKILL) while every run waits. A new worker
recovers the runs, which wait again without asking the model again. Decisions come from this
process, which is not a DBOS app (a ``DBOSClient``): approved lookups run once, refused ones are
answered to the model as refused, and every run finishes.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed")

from agentloop import UsageError
from agentloop.durable_dbos import approve, pending_approvals

from .crash import lines, start_worker, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from fakechat import FakeChatProcess, count_requests

DOCS = 6
APPROVED = {f"doc-{i}" for i in range(DOCS // 2)}


def _all_waiting(client: Any, ids: list[str]) -> bool:
    async def check() -> bool:
        found = [await pending_approvals(key, client=client) for key in ids]
        return all(len(calls) == 1 for calls in found)

    return asyncio.run(check())


async def _decide(client: Any, ids: list[str]) -> None:
    for key in ids:
        (call,) = await pending_approvals(key, client=client)
        assert (call.tool, call.arguments) == ("lookup", f'{{"doc_id": "{key}"}}')
        with pytest.raises(UsageError, match="waits for decisions on exactly"):
            await approve(key, {"call_other": True}, client=client)  # checked before sending
        await approve(key, {call.id: key in APPROVED}, client=client)
        await approve(key, {call.id: key in APPROVED}, client=client)  # delivered once


def test_runs_waiting_for_approval_survive_a_killed_worker(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    requests_log, tool_log = tmp_path / "requests.jsonl", tmp_path / "tools.log"
    ids = [f"doc-{i}" for i in range(DOCS)]
    with FakeChatProcess(latency=0.05, log=requests_log) as server:
        first = start_worker(db, server.base_url, tool_log, tmp_path / "w1.out",
                             count=DOCS, approvals=True)  # fmt: skip
        wait_for(lambda: "LAUNCHED" in lines(tmp_path / "w1.out"), 60, "the first worker")
        client: Any = importlib.import_module("dbos").DBOSClient(system_database_url=db)
        try:
            wait_for(lambda: _all_waiting(client, ids), 120, "every run to wait")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            second = start_worker(db, server.base_url, tool_log, tmp_path / "w2.out",
                                  count=DOCS, approvals=True)  # fmt: skip
            try:
                wait_for(lambda: "LAUNCHED" in lines(tmp_path / "w2.out"), 60, "the new worker")
                asyncio.run(_decide(client, ids))
                assert second.wait(120) == 0, (tmp_path / "w2.err").read_text()[-2000:]
            finally:
                second.kill()
            assert all(asyncio.run(_nothing_waits(client, ids)))
        finally:
            client.destroy()
            first.kill()  # a worker must not outlive the test
    finished = _results(tmp_path / "w2.out")
    assert {key: item["output"] for key, item in finished.items()} == {
        key: {"id": key, "words": 3} for key in ids
    }
    for key, item in finished.items():
        expected = f"document {key} found" if key in APPROVED else "was not approved"
        assert expected in item["tools"][0]
    assert Counter(lines(tool_log)) == Counter(APPROVED)  # approved lookups ran once each
    # each model request was asked once: the paused turn was recorded before the kill
    assert count_requests(requests_log) == {(k, t): 1 for k in ids for t in (0, 1)}


async def _nothing_waits(client: Any, ids: list[str]) -> list[bool]:
    return [not await pending_approvals(key, client=client) for key in ids]


def _results(out: Path) -> dict[str, Any]:
    import json

    found: dict[str, Any] = {}
    for line in lines(out):
        if line.startswith("RESULT "):
            item = json.loads(line.split(" ", 1)[1])
            found[item["id"]] = item
    return found


def test_a_run_given_no_decision_in_time_returns_its_state(tmp_path: Path) -> None:
    """The record keeps the calls waiting and the state; a plain agent resumes it anywhere."""
    from agentloop.durable_dbos import DBOSAgent, launch
    from scale.agents import Extracted, lookup_agent

    dbos: Any = importlib.import_module("dbos").DBOS
    tool_log = tmp_path / "tools.log"
    with FakeChatProcess() as server:
        agent = lookup_agent(server.base_url, tool_log, needs_approval=True)
        extractor = DBOSAgent(agent, name="approval_timeout", approval_timeout=0.5)
        launch({"name": "agentloop-approval-timeout",
                "system_database_url": f"sqlite:///{tmp_path / 'runs.sqlite'}"})  # fmt: skip
        try:
            record = asyncio.run(extractor.run("id=doc-9 one two three", workflow_id="doc-9"))
            assert asyncio.run(pending_approvals("doc-9")) == ()  # the run no longer waits
        finally:
            dbos.destroy()
        assert record["output"] is None
        (call,) = record["pending_approvals"]
        assert (call["tool"], call["arguments"]) == ("lookup", '{"doc_id": "doc-9"}')
        assert lines(tool_log) == []
        result = agent.resume_sync(record["state"], {call["id"]: True})
    assert result.output == Extracted(id="doc-9", words=3)
    assert lines(tool_log) == ["doc-9"]
    assert result.usage.requests == 2  # the saved request counts, and the one after the lookup
