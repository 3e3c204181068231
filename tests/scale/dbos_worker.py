"""A DBOS worker for the crash test: durable runs of documents ``doc-<first>``..``doc-<last>``.

    python tests/scale/dbos_worker.py --db sqlite:///runs.sqlite --base-url URL \
        --tool-log tools.log --first 0 --count 100 [--executor ID] [--parallel 20] \
        [--approvals] [--requests-per-minute N] [--until FILE]

It launches DBOS with `launch`, under an executor id of its own (`--executor`, or one chosen;
printed as ``EXECUTOR <id>``, then ``LAUNCHED``), which resumes the runs a dead worker left
pending under that id. Then it starts every document's run under the workflow id ``doc-<i>`` (a
run that exists already is not started twice), at most `--parallel` at a time, and prints
``DONE <n>`` once all have finished.
Each finished run prints a line ``RESULT <json>`` with the workflow id and the output. With
`--approvals` the lookup needs approval: each run waits for a decision sent with `approve`. With
`--requests-per-minute` the model requests of every worker share that budget (a DBOS queue).

With `--until`, it goes on serving (other workers' runs, recovered) until that file exists. It
stops as a worker should: DBOS finishes the runs it holds (some may be another worker's, that it
recovered) before it exits; a worker that exits without that leaves them pending under its id.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentloop import RateLimit
from agentloop.durable_dbos import DBOSAgent, launch
from scale.agents import lookup_agent

DBOS: Any = importlib.import_module("dbos").DBOS  # by name: pyright runs without the extra


async def run_all(extractor: DBOSAgent, first: int, count: int, parallel: int) -> int:
    slots = asyncio.Semaphore(parallel)

    async def one(index: int) -> None:
        async with slots:
            key = f"doc-{index}"
            record = await extractor.run(f"id={key} one two three", workflow_id=key)
            line = json.dumps({"id": key, "output": record["output"], "tools": _tools(record)})
            sys.stdout.write(f"RESULT {line}\n")  # one write per line
            sys.stdout.flush()

    await asyncio.gather(*(one(i) for i in range(first, first + count)))
    return count


def _tools(record: dict[str, Any]) -> list[str]:
    """What the model read back from its tool calls, in order."""
    return [m["content"] for m in record["messages"] if m.get("role") == "tool"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tool-log", type=Path, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--executor", default=None)
    parser.add_argument("--approvals", action="store_true")
    parser.add_argument("--requests-per-minute", type=float, default=None)
    parser.add_argument("--until", type=Path, default=None)
    args = parser.parse_args()
    agent = lookup_agent(args.base_url, args.tool_log, needs_approval=args.approvals)
    rpm = args.requests_per_minute
    extractor = DBOSAgent(
        agent,
        name="approvals" if args.approvals else "crash_test",
        rate_limit=RateLimit(requests_per_minute=rpm) if rpm else None,
    )
    config = {"name": "agentloop-crash-test", "system_database_url": args.db}
    print("EXECUTOR", launch(config, executor_id=args.executor), flush=True)
    print("LAUNCHED", flush=True)
    done = asyncio.run(run_all(extractor, args.first, args.count, args.parallel))
    print("DONE", done, flush=True)
    while args.until is not None and not args.until.exists():
        time.sleep(0.05)
    DBOS.destroy(workflow_completion_timeout_sec=120)


if __name__ == "__main__":
    main()
