"""Tokens/s of the local model per server and thread count, idle and next to one busy process.

    .venv/bin/python tools/local_threads.py [--threads 1 2] [--runs 3] [--tokens 200]

The table in `agentloop.local`'s docstring comes from this script. Each run streams a generation
of `--tokens` tokens (the end-of-text tokens suppressed, so every run is as long), capped at 60 s.
"Busy" is one other process running ``while True: pass``. Other processes on the machine are
watched through /proc: a run during which they used more than 0.15 cores is repeated once they
are quiet (Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import httpx

from agentloop.local import LocalServer
from agentloop.local._backends import BACKENDS, installed

CAP_SECONDS = 60.0
QUIET_CORES = 0.15
_TICK = os.sysconf("SC_CLK_TCK")


def busy_jiffies() -> int:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4]  # all but idle and iowait


def jiffies_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
    return total


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def family(pid: int) -> list[int]:
    """`pid` and its descendants (the launcher and the server behind it)."""
    found = [pid]
    for child in _children(pid):
        found += family(child)
    return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in _tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                out += [int(c) for c in children.read().split()]
        except OSError:
            pass
    return out


def generate(client: httpx.Client, server: LocalServer, tokens: int) -> tuple[int, float]:
    body = {
        "model": server.model_path.stem,
        "messages": [{"role": "user", "content": "Write a long story about a cat."}],
        "max_tokens": tokens,
        "temperature": 0,
        "seed": 7,
        "stream": True,
        "logit_bias": {"0": -100, "2": -100},  # SmolLM2's <|endoftext|> and <|im_end|>
        "ignore_eos": True,  # llama-server
    }
    url, count, start = f"{server.base_url}/chat/completions", 0, time.monotonic()
    headers = {"Connection": "close"}  # llama-server can hang on a reused streaming connection
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    count += 1
            if time.monotonic() - start > CAP_SECONDS:
                break
    return count, time.monotonic() - start


def measure(backend: str, threads: int, busy: bool, runs: int, tokens: int) -> list[float]:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    rates: list[float] = []
    try:
        with LocalServer(backend=backend, n_threads=threads, n_ctx=2048) as server:
            process = server._process  # pyright: ignore[reportPrivateUsage]
            assert process is not None
            mine = [os.getpid(), *family(process.pid), *([hog.pid] if hog else [])]
            with httpx.Client(timeout=300, trust_env=False) as client:
                generate(client, server, 16)  # warm up
                while len(rates) < runs:
                    while _others(mine, 1.0) > QUIET_CORES:
                        time.sleep(2)
                    before, own = busy_jiffies(), jiffies_of(mine)
                    count, seconds = generate(client, server, tokens)
                    others = (busy_jiffies() - before - (jiffies_of(mine) - own)) / _TICK / seconds
                    kept = others <= QUIET_CORES
                    print(
                        f"  {backend} n_threads={threads} busy={busy}: {count} tokens in "
                        f"{seconds:.1f} s = {count / seconds:.1f}/s (others: {others:.2f} cores)"
                        + ("" if kept else " REPEATED"),
                        flush=True,
                    )
                    if kept:
                        rates.append(count / seconds)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return rates


def _others(mine: list[int], seconds: float) -> float:
    before, own, start = busy_jiffies(), jiffies_of(mine), time.monotonic()
    time.sleep(seconds)
    return (busy_jiffies() - before - (jiffies_of(mine) - own)) / _TICK / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    rows: list[tuple[str, int, bool, list[float]]] = []
    for busy in (False, True):
        for backend in (b for b in BACKENDS if installed(b)):
            for threads in args.threads:
                rates = measure(backend, threads, busy, args.runs, args.tokens)
                rows.append((backend, threads, busy, rates))
    print(
        "\n| server | n_threads | other load | tokens/s | median |\n| --- | --- | --- | --- | --- |"
    )
    for backend, threads, busy, rates in rows:
        median = sorted(rates)[len(rates) // 2]
        runs = ", ".join(f"{rate:.1f}" for rate in rates)
        load = "one busy process" if busy else "idle"
        print(f"| {backend} | {threads} | {load} | {runs} | {median:.1f} |")


if __name__ == "__main__":
    main()
