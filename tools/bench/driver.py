"""One client framework, one scenario, in this process; prints one JSON line of measurements.

``python driver.py FRAMEWORK SCENARIO --port P [--runs N] [--concurrency N] [--server-pid PID]``

Scenarios: ``tool`` and ``structured`` (sequential runs: client CPU and wall per run), ``stream``
(streamed answers: CPU per chunk), ``concurrent`` (N runs at once, 200 ms server latency: wall,
runs/s, peak memory per run, p99), ``import`` (import time, then building 20 tool definitions).
Client CPU is `time.process_time` of this process; the server's CPU over the same window is read
from /proc so its utilisation can be shown next to the client's.
"""

from __future__ import annotations

import sys
import time

if __name__ == "__main__" and sys.argv[2:3] == ["import"]:
    # Measured before anything else is imported (asyncio, json...), in a fresh interpreter.
    _STARTED = time.perf_counter()
    exec(
        {
            "raw": "import httpx",
            "raw_aiohttp": "import aiohttp",
            "raw_asyncio": "import asyncio",
            "raw_stackpool": "import httpx",
            "agentloop_httpx": "from agentloop import Agent, OpenAICompatible, tool",
            "openai_sdk": "import openai",
            "agentloop_": "from agentloop import Agent, OpenAICompatible, tool",
            "pydantic_ai_": "import pydantic_ai, pydantic_ai.models.openai, "
            "pydantic_ai.providers.openai",
            "openai_agents": "import agents",
            "instructor_": "import instructor, openai",
        }[sys.argv[1]],
        {},
    )
    _IMPORTED = time.perf_counter() - _STARTED

import argparse
import asyncio
import importlib
import json
import os
import resource

WARMUP = 20


def server_cpu(pid: int) -> float:
    """utime + stime of the server process, in seconds (0 when unknown)."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def import_scenario(framework: str) -> dict[str, float | None]:
    imported = _IMPORTED
    from clients.common import tool_functions

    functions = tool_functions(20)
    module = importlib.import_module(f"clients.{framework}")
    build = module.BUILD_TOOLS
    if build is None:
        return {"import": imported, "tools": None}
    started = time.perf_counter()
    build(functions)
    return {"import": imported, "tools": time.perf_counter() - started}


async def sequential(client: object, scenario: str, runs: int, pid: int) -> dict[str, float]:
    call = getattr(
        client, {"tool": "tool_run", "structured": "structured_run"}.get(scenario, "stream_run")
    )
    for _ in range(WARMUP if scenario != "stream" else 3):
        await call()
    items = 0
    s0, c0, t0 = server_cpu(pid), time.process_time(), time.perf_counter()
    for _ in range(runs):
        value = await call()
        items += value if scenario == "stream" else 1
        if scenario == "tool":
            assert value == "3", value
        elif scenario == "structured":
            assert value.answer == 3 and len(value.steps) == 3, value  # type: ignore[attr-defined]
    wall, cpu, srv = time.perf_counter() - t0, time.process_time() - c0, server_cpu(pid) - s0
    per = items if scenario == "stream" else runs
    assert scenario != "stream" or items == runs * 500, items
    return {
        "cpu": cpu / per,
        "wall": wall / per,
        "server_cpu": srv / per,
        "server_util": srv / wall,
    }


async def concurrent(client: object, runs: int, pid: int) -> dict[str, float]:
    call = client.tool_run  # type: ignore[attr-defined]
    for _ in range(5):
        await call()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    latencies: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        assert await call() == "3"
        latencies.append(time.perf_counter() - started)

    s0, c0, t0 = server_cpu(pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    wall, cpu, srv = time.perf_counter() - t0, time.process_time() - c0, server_cpu(pid) - s0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    latencies.sort()
    return {
        "wall": wall,
        "runs_per_s": runs / wall,
        "cpu": cpu / runs,
        "mem_per_run_kb": (peak - base) / runs,
        "peak_mb": peak / 1024,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "server_util": srv / wall,
    }


async def run(args: argparse.Namespace) -> dict[str, float]:
    module = importlib.import_module(f"clients.{args.framework}")
    client = module.Client()
    latency = "/lat200" if args.scenario == "concurrent" else ""
    connections = args.concurrency if args.scenario == "concurrent" else 100
    await client.open(f"http://127.0.0.1:{args.port}{latency}/v1", connections)
    try:
        if args.scenario == "concurrent":
            return await concurrent(client, args.concurrency, args.server_pid)
        return await sequential(client, args.scenario, args.runs, args.server_pid)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("framework")
    parser.add_argument("scenario")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()
    if args.scenario == "import":
        print(json.dumps(import_scenario(args.framework)))
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
