"""The crash test's machinery: workers in subprocesses, a SIGKILL, and the honest counts."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("dbos_worker.py")
STEPS = ("model:0", "tool", "model:1")  # what one document's run does, in order


def start_worker(db: str, base_url: str, tool_log: Path, out: Path, **options: Any) -> Any:
    command = [sys.executable, str(WORKER), "--db", db, "--base-url", base_url]
    command += ["--tool-log", str(tool_log)]
    for name, value in options.items():
        if value is not None:
            flag = f"--{name.replace('_', '-')}"
            command += [flag] if value is True else [flag, str(value)]
    # stderr (DBOS's log) apart: interleaved with stdout it could split a RESULT line
    log, errors = out.open("w"), out.with_suffix(".err").open("w")
    return subprocess.Popen(command, stdout=log, stderr=errors, text=True)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def completed_steps(db: str, ids: list[str]) -> dict[str, list[str]]:
    """For each workflow, the steps DBOS has recorded as finished, as `STEPS` names."""
    client: Any = importlib.import_module("dbos").DBOSClient(system_database_url=db)
    try:
        done: dict[str, list[str]] = {}
        for workflow_id in ids:
            names: list[str] = []
            for step in client.list_workflow_steps(workflow_id, load_output=False):
                if step["completed_at_epoch_ms"] is None:
                    continue
                kind = step["function_name"].split(":", 1)[0]  # rate permits are not counted
                if kind == "agentloop.tool":
                    names.append("tool")
                elif kind == "agentloop.model":
                    names.append(f"model:{names.count('tool')}")
            done[workflow_id] = names
        return done
    finally:
        client.destroy()


@dataclass
class Counts:
    """Executions per step, split by whether the step had finished before the kill."""

    finished_before_kill: int = 0
    finished_before_kill_run_twice: int = 0
    unfinished_at_kill: int = 0
    unfinished_run_twice: int = 0
    runs_finished_before_kill: int = 0
    problems: list[str] = field(default_factory=lambda: [])


def tally(
    before: dict[str, list[str]], requests: dict[tuple[str, int], int], tools: Counter[str]
) -> Counts:
    counts = Counts()
    for key, done in before.items():
        counts.runs_finished_before_kill += len(done) == len(STEPS)
        for step in STEPS:
            runs = tools[key] if step == "tool" else requests.get((key, int(step[-1])), 0)
            if step in done:
                counts.finished_before_kill += 1
                counts.finished_before_kill_run_twice += runs > 1
                if runs != 1:
                    counts.problems.append(f"{key} {step}: finished before the kill, ran {runs}x")
            else:
                counts.unfinished_at_kill += 1
                counts.unfinished_run_twice += runs == 2
                if runs not in (1, 2):
                    counts.problems.append(f"{key} {step}: unfinished at the kill, ran {runs}x")
    return counts


def results(out: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in lines(out):
        if line.startswith("RESULT "):
            item = json.loads(line.split(" ", 1)[1])
            found[item["id"]] = item["output"]
    return found
