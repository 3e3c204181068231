"""DBOS: a worker killed (SIGKILL) in the middle of 100 durable runs; a new one finishes them.

What DBOS guarantees, and what is checked: a step (a model request, a tool call) whose result was
recorded before the kill never runs again. A step that was in flight when the worker died has no
recorded result: it runs again on recovery, so it may have run twice, never more. Every run ends
with the right output. The counts come from the fake server's request log and the tool's log.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed")

from .crash import completed_steps, lines, results, start_worker, tally, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from fakechat import FakeChatProcess, count_requests

DOCS = 100


def _crash_and_recover(db: str, tmp_path: Path) -> None:
    requests_log, tool_log = tmp_path / "requests.jsonl", tmp_path / "tools.log"
    ids = [f"doc-{i}" for i in range(DOCS)]
    with FakeChatProcess(latency=0.2, log=requests_log) as server:
        first = start_worker(db, server.base_url, tool_log, tmp_path / "w1.out", count=DOCS)
        wait_for(lambda: len(lines(tool_log)) >= 40, 120, "40 tool calls")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        before = completed_steps(db, ids)
        second = start_worker(db, server.base_url, tool_log, tmp_path / "w2.out", count=DOCS)
        assert second.wait(180) == 0, (tmp_path / "w2.err").read_text()[-2000:]
    outputs = results(tmp_path / "w2.out")
    assert outputs == {key: {"id": key, "words": 3} for key in ids}
    counts = tally(before, count_requests(requests_log), Counter(lines(tool_log)))
    print(f"\ncrash test ({db.split(':')[0]}): {counts}")
    assert counts.problems == []
    assert counts.finished_before_kill_run_twice == 0
    assert 0 < counts.runs_finished_before_kill < DOCS  # the kill did land in the middle
    assert set(count_requests(requests_log)) == {(k, t) for k in ids for t in (0, 1)}
    assert set(lines(tool_log)) == set(ids)


def test_sqlite_worker_killed_mid_way_all_runs_finish(tmp_path: Path) -> None:
    _crash_and_recover(f"sqlite:///{tmp_path / 'runs.sqlite'}", tmp_path)


def test_postgres_two_workers_one_killed_all_runs_finish(tmp_path: Path) -> None:
    """Two workers share PostgreSQL (50 runs each); one is killed and restarted, and recovers.

    The surviving worker may take some of the restarted one's recovered runs from DBOS's queue;
    it finishes them before it exits (a worker that did not, once, left them hanging).
    """
    from .postgres import local_postgres

    with local_postgres() as db:
        _two_workers(db, tmp_path)


def _two_workers(db: str, tmp_path: Path) -> None:
    requests_log, tool_log = tmp_path / "requests.jsonl", tmp_path / "tools.log"
    ids = [f"doc-{i}" for i in range(DOCS)]
    half = DOCS // 2
    with FakeChatProcess(latency=0.2, log=requests_log) as server:
        url = server.base_url
        other = start_worker(db, url, tool_log, tmp_path / "b.out", first=half, count=half,
                             executor="b")  # fmt: skip
        doomed = start_worker(db, url, tool_log, tmp_path / "a.out", count=half, executor="a")
        mine = set(ids[:half])
        wait_for(lambda: len(mine.intersection(lines(tool_log))) >= 25, 120, "25 tool calls of a")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        before = completed_steps(db, ids[:half])
        again = start_worker(db, url, tool_log, tmp_path / "a2.out", count=half, executor="a")
        try:
            assert again.wait(180) == 0, (tmp_path / "a2.err").read_text()[-2000:]
            assert other.wait(180) == 0, (tmp_path / "b.err").read_text()[-2000:]
        finally:  # a hung worker must not outlive the test
            for worker in (again, other):
                worker.kill()
    outputs = {**results(tmp_path / "a2.out"), **results(tmp_path / "b.out")}
    assert outputs == {key: {"id": key, "words": 3} for key in ids}
    requests, tools = count_requests(requests_log), Counter(lines(tool_log))
    counts = tally(before, requests, tools)
    print(f"\ncrash test (postgres, 2 workers): {counts}")
    assert counts.problems == []
    assert counts.finished_before_kill_run_twice == 0
    assert 0 < counts.runs_finished_before_kill < half
    untouched = ids[half:]  # the worker that was not killed ran each of its steps once
    assert all(requests[(k, t)] == 1 for k in untouched for t in (0, 1))
    assert all(tools[k] == 1 for k in untouched)
