"""Documents per second through `agentloop.ray_data.map_agent` on this machine, and memory.

Usage: python tools/bench_ray.py [--docs 2000] [--latency 0.2] [--actors 1 2 4]

A local Ray (2 CPUs, loopback, no dashboard) extracts `--docs` documents against the fake chat
server (tools/fakechat.py, its own process, `--latency` seconds per answer), once per actor count,
writing Parquet. For each run it prints the documents per second (wall time of the whole stage,
actor start-up included), the peak resident memory of the Ray worker processes (summed, and the
largest one), and checks that every document came back once, without error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakechat import FakeChatProcess
from scale.agents import extraction_agent, prompt_of

from agentloop.ray_data import map_agent

_ROOT = Path(__file__).resolve().parents[1]
# By name: the type checker may run without the ray extra.
ray: Any = importlib.import_module("ray")
pq: Any = importlib.import_module("pyarrow.parquet")


def _ray_worker_rss() -> list[int]:
    """The resident memory (bytes) of each Ray worker process, from /proc (Linux)."""
    sizes: list[int] = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "default_worker.py" not in cmd and not cmd.startswith("ray::"):
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) * 1024)
    return sizes


class MemoryWatch:
    """Samples the resident memory of Ray's worker processes every 0.2 s."""

    def __init__(self) -> None:
        self.peak_total = 0
        self.peak_one = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            sizes = list(_ray_worker_rss())
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_one = max(self.peak_one, max(sizes, default=0))

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(base_url: str, docs: int, actors: int, folder: Path) -> None:
    items = [{"id": f"d{i}", "text": "word " * (i % 17 + 1)} for i in range(docs)]
    ds = ray.data.from_items(items)
    out = folder / f"out-{actors}"
    factory = partial(extraction_agent, base_url)
    started = time.perf_counter()
    with MemoryWatch() as memory:
        map_agent(ds, factory, prompt=prompt_of, actors=actors, concurrency=64).write_parquet(
            str(out)
        )
    elapsed = time.perf_counter() - started
    rows = pq.read_table(str(out)).to_pylist()
    errors = Counter(f"{r['error_type']}: {r['error']}"[:200] for r in rows if r["error"])
    ok = len(rows) == docs and len({r["id"] for r in rows}) == docs and not errors
    for error, count in errors.most_common(3):
        print(f"  {count} x {error}")
    mib = 1024 * 1024
    print(
        f"actors={actors}: {docs} docs in {elapsed:.1f} s = {docs / elapsed:.0f} docs/s; "
        f"Ray workers peak RSS {memory.peak_total / mib:.0f} MiB "
        f"(largest {memory.peak_one / mib:.0f} MiB); all back once, no error: {ok}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    # Ray's workers import the agent factory from tests/; no usage reports leave the machine.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    )
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    print(f"{os.cpu_count()} CPUs; server latency {args.latency * 1000:.0f} ms", flush=True)
    try:
        with FakeChatProcess(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
            for actors in args.actors:
                one_run(server.base_url, args.docs, actors, Path(tmp))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
