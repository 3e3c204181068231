"""agentloop's tool run on trio (httpx, its transport there): client CPU per run.

`make bench` runs on asyncio; this checks that trio does not get slower. Run it with the tree to
measure first on PYTHONPATH, e.g. for two commits checked out side by side::

    PYTHONPATH=/path/to/tree python tools/bench/trio_run.py

It starts the bench server (`server.py`) on core 1, pins itself to core 0, and prints the CPU per
run of three repetitions of 1,500 runs (after 200 warm-up runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients.agentloop_ import Client  # noqa: E402

PORT = 18766
RUNS = 1500


async def measure() -> list[float]:
    client = Client()
    await client.open(f"http://127.0.0.1:{PORT}/v1", 100)
    try:
        for _ in range(200):
            await client.tool_run()
        per_run: list[float] = []
        for _ in range(3):
            started = time.process_time()
            for _ in range(RUNS):
                await client.tool_run()
            per_run.append((time.process_time() - started) / RUNS)
        return per_run
    finally:
        await client.close()


def main() -> None:
    cores = os.cpu_count() or 1
    server = subprocess.Popen(
        ["taskset", "-c", str(cores - 1), sys.executable, str(HERE / "server.py"), str(PORT)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        os.sched_setaffinity(0, {0})
        per_run = trio.run(measure)
    finally:
        server.kill()
    import agentloop

    print(f"{agentloop.__file__}: tool run on trio, client CPU per run (3 x {RUNS}):")
    print("  " + ", ".join(f"{seconds * 1e3:.3f} ms" for seconds in per_run))


if __name__ == "__main__":
    main()
