"""The benchmark: agentloop and its peers side by side, one fake server, one command.

``python tools/bench/run.py [--quick]`` (``make bench``). Starts `server.py` pinned to the last
core, then runs every (scenario, client, repetition) in its own subprocess pinned to core 0
(`driver.py`), prints Markdown tables (median, min and max over the repetitions, and the ratio of
the median to each floor's: the raw loop on aiohttp, the transport floor; on bare asyncio, the
physical floor; on httpx) and writes everything to ``tools/bench/results/*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLIENTS = {
    "raw_asyncio": "raw asyncio loop (physical floor)",
    "raw_aiohttp": "raw aiohttp loop (transport floor)",
    "raw": "raw httpx loop",
    "openai_sdk": "openai SDK loop",
    "agentloop_": "agentloop",
    "agentloop_otel": "agentloop, OpenTelemetry on",
    "pydantic_ai_": "pydantic-ai",
    "openai_agents": "openai-agents",
    "instructor_": "instructor",
    # Only for the pool comparison (--clients raw_stackpool,agentloop_httpx,...):
    "raw_stackpool": "raw httpx loop on StackPool",
    "agentloop_httpx": "agentloop on httpx's pool",
}
DEFAULT_CLIENTS = (
    "raw_asyncio,raw_aiohttp,raw,openai_sdk,agentloop_,agentloop_otel,pydantic_ai_,openai_agents,"
    "instructor_"
)
FLOORS = {"raw_aiohttp": "aiohttp", "raw_asyncio": "asyncio", "raw": "httpx"}
"""The floors each client's first metric is divided by (a column each, when measured)."""
SUPPORTS = {"instructor_": {"structured", "import"}}
# scenario -> (title, [(metric, label, scale, unit)])
TABLES: dict[str, tuple[str, list[tuple[str, str, float, str]]]] = {
    "tool": (
        "(a) one run = prompt, one tool call, its result, final text (2 requests)",
        [
            ("cpu", "client CPU/run", 1e3, "ms"),
            ("wall", "wall/run", 1e3, "ms"),
            ("server_util", "server core busy", 100, "%"),
        ],
    ),
    "structured": (
        "(b) the same run with a structured final answer (5 fields, a nested list)",
        [
            ("cpu", "client CPU/run", 1e3, "ms"),
            ("wall", "wall/run", 1e3, "ms"),
            ("server_util", "server core busy", 100, "%"),
        ],
    ),
    "stream": (
        "(d) one streamed answer of 500 chunks",
        [
            ("cpu", "client CPU/chunk", 1e6, "µs"),
            ("wall", "wall/chunk", 1e6, "µs"),
            ("server_util", "server core busy", 100, "%"),
        ],
    ),
    "import": (
        "(e) import time, and building the definitions of 20 tools (fresh process)",
        [("import", "import", 1e3, "ms"), ("tools", "20 tool definitions", 1e3, "ms")],
    ),
}
CONCURRENT_METRICS = [
    ("wall", "wall", 1, "s"), ("runs_per_s", "runs/s", 1, ""), ("cpu", "client CPU/run", 1e3, "ms"),
    ("mem_per_run_kb", "memory/run", 1, "KiB"), ("peak_mb", "peak RSS", 1, "MiB"),
    ("p99", "p99 run latency", 1, "s"), ("server_util", "server core busy", 100, "%"),
]  # fmt: skip


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() else []


def machine(python: str) -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    code = (
        "import importlib.metadata as m, json, sys\n"
        "names = ['agentloop', 'aiohttp', 'httpx', 'httpcore', 'anyio', 'pydantic', 'openai',"
        " 'pydantic-ai-slim', 'openai-agents', 'instructor']\n"
        "v = {}\n"
        "for n in names:\n"
        "    try: v[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: v[n] = None\n"
        "print(json.dumps({'python': sys.version.split()[0], 'versions': v}))"
    )
    out = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), **out}


def start_server(python: str, port: int) -> subprocess.Popen[str]:
    core = (os.cpu_count() or 1) - 1
    server = subprocess.Popen(
        [*pin(core), python, str(HERE / "server.py"), str(port)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


def drive(
    python: str, client: str, scenario: str, extra: list[str], limit: float = 900
) -> dict[str, Any]:
    command = [*pin(0), python, str(HERE / "driver.py"), client, scenario, *extra]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {limit:g} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(reps: list[dict[str, Any]], metric: str) -> dict[str, float] | None:
    values = [r[metric] for r in reps if r.get(metric) is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(value: float, scale: float, unit: str) -> str:
    scaled = value * scale
    digits = 0 if abs(scaled) >= 100 else 1 if abs(scaled) >= 10 else 2 if abs(scaled) >= 1 else 3
    return f"{scaled:.{digits}f}{' ' + unit if unit else ''}"


def table(
    title: str, rows: dict[str, list[dict[str, Any]]], metrics: list[tuple[str, str, float, str]]
) -> str:
    head = ["client"]
    for _, label, _, _ in metrics:
        head += [f"{label} (median)", "min–max"]
    floors = {
        name: found
        for key, name in FLOORS.items()
        if (found := summary(rows.get(key, []), metrics[0][0])) is not None and found["median"]
    }
    head += [f"x {name}" for name in floors]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for client, reps in rows.items():
        errors = [r["error"] for r in reps if "error" in r]
        cells = [CLIENTS[client]]
        first = summary(reps, metrics[0][0])
        for metric, _, scale, unit in metrics:
            s = summary(reps, metric)
            cells += ["n/a", ""] if s is None else [
                fmt(s["median"], scale, unit),
                f"{fmt(s['min'], scale, '')}–{fmt(s['max'], scale, '')}",
            ]  # fmt: skip
        for floor in floors.values():
            cells.append(f"{first['median'] / floor['median']:.2f}x" if first else "")
        if errors and first is None:
            cells[1] = f"failed: {errors[0][:80]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short pass (fewer runs and reps)")
    parser.add_argument("--reps", type=int, help="repetitions (fresh processes) per measurement")
    parser.add_argument("--runs", type=int, help="sequential runs per repetition")
    parser.add_argument("--concurrency", default=None, help="comma-separated, e.g. 1000,5000")
    parser.add_argument("--clients", default=DEFAULT_CLIENTS, help="subset, comma-separated")
    parser.add_argument("--scenarios", default="tool,structured,stream,concurrent,import")
    parser.add_argument("--concurrent-reps", type=int, default=1, help="repetitions of (c)")
    parser.add_argument(
        "--concurrent-limit", type=float, default=180, help="seconds before a (c) run is cut off"
    )
    parser.add_argument("--port", type=int, default=18744)
    parser.add_argument("--python", default=None, help="interpreter with every peer installed")
    args = parser.parse_args()
    venv = HERE / ".venv" / "bin" / "python"
    python = args.python or (str(venv) if venv.exists() else sys.executable)
    reps = args.reps or (2 if args.quick else 5)
    runs = args.runs or (50 if args.quick else 300)
    stream_runs = 5 if args.quick else 20
    levels = [
        int(c) for c in (args.concurrency or ("1000" if args.quick else "1000,5000")).split(",")
    ]
    clients = [c for c in args.clients.split(",") if c in CLIENTS]
    scenarios = args.scenarios.split(",")
    info = machine(python)
    results: dict[str, Any] = {"machine": info, "config": {
        "reps": reps, "runs": runs, "stream_runs": stream_runs, "concurrency": levels,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }, "scenarios": {}}  # fmt: skip
    out: list[str] = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}, Python {info['python']}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v),
        f"Server pinned to core {(os.cpu_count() or 1) - 1}, each client in its own process on "
        f"core 0; {reps} repetitions, {runs} runs each (after 20 warm-up runs).",
    ]
    print("\n".join(out), flush=True)
    if "import" in scenarios:
        # Every peer is installed with its modules compiled (pip does it); agentloop, installed
        # editable, is compiled here, so that the import column compares like with like.
        subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "agentloop")], check=True)
    server = start_server(python, args.port)
    try:
        common = ["--port", str(args.port), "--server-pid", str(server.pid)]
        for scenario in scenarios:
            if scenario == "concurrent":
                for level in levels:
                    key = f"concurrent_{level}"
                    rows = _collect(python, clients, "concurrent", args.concurrent_reps,
                                    [*common, "--concurrency", str(level)],
                                    args.concurrent_limit)  # fmt: skip
                    results["scenarios"][key] = rows
                    title = (f"(c) {level} concurrent runs, 200 ms server latency per request, "
                             f"every client limited to {level} connections")  # fmt: skip
                    out.append(table(title, rows, CONCURRENT_METRICS))
                    print("\n" + out[-1], flush=True)
                continue
            count = stream_runs if scenario == "stream" else runs
            rows = _collect(python, clients, scenario, reps, [*common, "--runs", str(count)])
            results["scenarios"][scenario] = rows
            title, metrics = TABLES[scenario]
            out.append(table(title, rows, metrics))
            print("\n" + out[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    path = HERE / "results" / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.parent.mkdir(exist_ok=True)
    results["tables"] = "\n\n".join(out)
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path.relative_to(HERE.parent.parent)}")


def _collect(
    python: str,
    clients: list[str],
    scenario: str,
    reps: int,
    extra: list[str],
    limit: float = 900,
) -> dict[str, list[dict[str, Any]]]:
    """Repetitions interleaved (client A, B, C, A, B, C...) so slow drift hits every client."""
    rows: dict[str, list[dict[str, Any]]] = {}
    failed: set[str] = set()
    for _ in range(reps):
        for client in clients:
            if scenario not in SUPPORTS.get(client, {scenario}) or client in failed:
                continue
            result = drive(python, client, scenario, extra, limit)
            rows.setdefault(client, []).append(result)
            if "error" in result:
                print(f"  {CLIENTS[client]} / {scenario}: {result['error']}", file=sys.stderr)
                failed.add(client)
    return rows


if __name__ == "__main__":
    main()
