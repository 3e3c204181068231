"""Documents per second through `agentloop.ray_data.map_agent` on this machine, its memory and
CPU, beside `agentloop.batch` on the same documents.

Usage: python tools/bench_ray.py [--docs 2000] [--latency 0.2] [--actors 1 2 4] [--batch 64 128]
                                 [--concurrency 64] [--env NAME=VALUE ...]

A local Ray (2 CPUs, loopback, no dashboard) extracts `--docs` documents against the fake chat
server (tools/fakechat.py, its own process, `--latency` seconds per answer), once per actor count,
writing Parquet. For each run it prints the documents per second (wall time of the whole stage,
actor start-up included), the CPU seconds of every process Ray started for it, and the peak
memory of those processes by role: the pool's actors (``MapWorker``), Ray's idle workers, Ray
Data's other actors, and Ray's own daemons (raylet, GCS). Memory is RSS (pages shared between
processes, the object store's among them, counted in each) and USS (the process's own pages).
It checks that every document came back once, without error. `--env` sets environment variables
of the actors' processes (``runtime_env``), for example ``MALLOC_ARENA_MAX=2``.

Then `agentloop.batch.run_batch` runs the same documents in a child process, once per
``--batch`` concurrency, printing its documents per second, CPU seconds and memory the same way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakechat import FakeChatProcess
from scale.agents import costly_prompt_of, extraction_agent, prompt_of

_ROOT = Path(__file__).resolve().parents[1]
_MIB = 1024 * 1024
_TICK = os.sysconf("SC_CLK_TCK")


def _prompt(cpu_ms: float) -> Any:
    return partial(costly_prompt_of, cpu_ms) if cpu_ms else prompt_of


def _documents(count: int) -> list[dict[str, str]]:
    return [{"id": f"d{i}", "text": "word " * (i % 17 + 1)} for i in range(count)]


# --- processes: memory and CPU from /proc (Linux) -----------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(parent, []).append(int(proc.name))
    return tree


def descendants(root: int) -> list[int]:
    """Every process under `root` (Ray's daemons and workers, under the driver)."""
    tree, found, todo = _children(), [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


_DAEMON_ACTORS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def role(pid: int) -> str | None:
    """What a Ray process is, from its command line; None for the fake server and others."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "fakechat" in cmd:
        return None
    if cmd.startswith("ray::MapWorker"):
        return "pool actors"
    if cmd.startswith("ray::IDLE") or "default_worker.py" in cmd:
        return "idle workers"
    if cmd.startswith("ray::") and not cmd.startswith(_DAEMON_ACTORS):
        return "Ray Data's own actors"  # its stats, autoscaling and locality actors
    return "Ray daemons"  # GCS, raylet, monitors, dashboard and runtime-env agents


def memory(pid: int) -> tuple[int, int]:
    """(RSS, USS) of `pid` in bytes, from smaps_rollup."""
    rss = uss = 0
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return 0, 0
    for line in lines:
        name, value = line.split(":", 1)
        if name == "Rss":
            rss = int(value.split()[0]) * 1024
        elif name in ("Private_Clean", "Private_Dirty"):
            uss += int(value.split()[0]) * 1024
    return rss, uss


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


@dataclass
class Peak:
    """The peak summed RSS and USS of one role, its largest process, and how many processes."""

    rss: int = 0
    uss: int = 0
    largest_uss: int = 0
    processes: int = 0


@dataclass
class MemoryWatch:
    """Samples the memory and CPU of every process under this one, by role, every 0.25 s."""

    peaks: dict[str, Peak] = field(default_factory=lambda: {})
    cpu: dict[int, float] = field(default_factory=lambda: {})
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        totals: dict[str, Peak] = {}
        for pid in descendants(os.getpid()):
            kind = role(pid)
            if kind is None:
                continue
            rss, uss = memory(pid)
            total = totals.setdefault(kind, Peak())
            total.rss, total.uss = total.rss + rss, total.uss + uss
            total.largest_uss, total.processes = max(total.largest_uss, uss), total.processes + 1
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu_seconds(pid))
        for kind, total in totals.items():
            peak = self.peaks.setdefault(kind, Peak())
            peak.rss, peak.uss = max(peak.rss, total.rss), max(peak.uss, total.uss)
            peak.largest_uss = max(peak.largest_uss, total.largest_uss)
            peak.processes = max(peak.processes, total.processes)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def __enter__(self) -> MemoryWatch:
        self._start_cpu = {pid: cpu_seconds(pid) for pid in descendants(os.getpid())}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def cpu_used(self) -> float:
        return sum(used - self._start_cpu.get(pid, 0.0) for pid, used in self.cpu.items())

    def report(self) -> str:
        lines = []
        for kind, peak in sorted(self.peaks.items()):
            lines.append(
                f"    {kind}: {peak.processes} processes, RSS {peak.rss / _MIB:.0f} MiB, "
                f"USS {peak.uss / _MIB:.0f} MiB (largest {peak.largest_uss / _MIB:.0f} MiB)"
            )
        return "\n".join(lines)


# --- the Ray runs -------------------------------------------------------------------------------


def ray_run(ray: Any, base_url: str, args: argparse.Namespace, actors: int, folder: Path) -> None:
    from agentloop.ray_data import map_agent

    pq: Any = importlib.import_module("pyarrow.parquet")
    docs = args.docs
    ds = ray.data.from_items(_documents(docs))
    out = folder / f"out-{actors}"
    factory = partial(extraction_agent, base_url)
    env = dict(item.split("=", 1) for item in args.env)
    extra = {"runtime_env": {"env_vars": env}} if env else None
    started = time.perf_counter()
    with MemoryWatch() as watch:
        stage = map_agent(
            ds, factory, prompt=_prompt(args.cpu_ms), actors=actors, concurrency=args.concurrency,
            batch_size=args.batch_size, calls_per_actor=args.calls, map_batches_args=extra,
        )  # fmt: skip
        stage.write_parquet(str(out))
    elapsed = time.perf_counter() - started
    rows = pq.read_table(str(out)).to_pylist()
    errors = Counter(f"{r['error_type']}: {r['error']}"[:200] for r in rows if r["error"])
    ok = len(rows) == docs and len({r["id"] for r in rows}) == docs and not errors
    for error, count in errors.most_common(3):
        print(f"  {count} x {error}")
    actor = watch.peaks.get("pool actors", Peak())
    print(
        f"ray actors={actors}: {docs} docs in {elapsed:.1f} s = {docs / elapsed:.0f} docs/s, "
        f"{watch.cpu_used():.1f} CPU s; actors' USS {actor.uss / _MIB:.0f} MiB "
        f"({actor.uss / max(actors, 1) / _MIB:.0f} MiB each), all back once, no error: {ok}\n"
        f"{watch.report()}",
        flush=True,
    )


def ray_runs(base_url: str, args: argparse.Namespace) -> None:
    ray: Any = importlib.import_module("ray")  # by name: the type checker may lack the extra
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for actors in args.actors:
                ray_run(ray, base_url, args, actors, Path(tmp))
    finally:
        ray.shutdown()


# --- agentloop.batch, in a child process --------------------------------------------------------


def batch_child(base_url: str, docs: int, concurrency: int, cpu_ms: float) -> None:
    """Run the documents through `run_batch`; print one JSON line of figures."""
    import anyio

    from agentloop.batch import run_batch

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        agent = extraction_agent(base_url)
        summary = anyio.run(
            partial(run_batch, agent, _documents(docs), Path(tmp) / "out.jsonl",
                    prompt=_prompt(cpu_ms), concurrency=concurrency, progress=False)
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss, uss = memory(os.getpid())
    print(json.dumps({
        "elapsed": elapsed, "ok": summary.succeeded == docs, "cpu": usage.ru_utime + usage.ru_stime,
        "rss": rss, "uss": uss,
    }))  # fmt: skip


def batch_run(base_url: str, docs: int, concurrency: int, cpu_ms: float) -> None:
    command = [sys.executable, __file__, "--child-batch", base_url, str(docs), str(concurrency)]
    command.append(str(cpu_ms))
    line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    got = json.loads(line.strip().splitlines()[-1])
    print(
        f"batch concurrency={concurrency}: {docs} docs in {got['elapsed']:.1f} s = "
        f"{docs / got['elapsed']:.0f} docs/s, {got['cpu']:.1f} CPU s; one process, at the end "
        f"RSS {got['rss'] / _MIB:.0f} MiB, USS {got['uss'] / _MIB:.0f} MiB; "
        f"all done: {got['ok']}",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child-batch":
        batch_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--actors", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=64, help="per actor")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per Ray Data batch")
    parser.add_argument("--calls", type=int, default=2, help="batches in flight per actor")
    parser.add_argument("--batch", type=int, nargs="*", default=[64, 128])
    parser.add_argument("--cpu-ms", type=float, default=0, help="CPU work per document")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for the actors")
    args = parser.parse_args()
    # Ray's workers import the agent factory from tests/; no usage reports leave the machine.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    )
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    print(f"{os.cpu_count()} CPUs; server latency {args.latency * 1000:.0f} ms; "
          f"{args.cpu_ms:g} ms of CPU per document", flush=True)  # fmt: skip
    with FakeChatProcess(latency=args.latency) as server:
        if args.actors:
            ray_runs(server.base_url, args)
        for concurrency in args.batch:
            batch_run(server.base_url, args.docs, concurrency, args.cpu_ms)


if __name__ == "__main__":
    main()
