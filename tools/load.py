"""Load: thousands of concurrent agent runs against the fault server on 127.0.0.1.

Usage: python tools/load.py --runs 1000 --fault-rate 0.05 [--stream-share 0.5] [--seed 1]
       [--max-connections 100] [--slow-rate 0.01 --slow 2] [--latency 0.05 --jitter 0.05]

Each run asks for a tool call (`add`), runs it and gets a final answer: two requests when nothing
goes wrong. Each request meets a random fault of `faultserver.FAULTS` with probability
`--fault-rate` (retryable statuses, final statuses, quota and moderation errors, HTML pages,
resets, cut bodies, malformed JSON, errors inside streams). Every run must end as a result or as
one of agentloop's typed errors carrying its transcript and usage; the script prints a table of
outcomes by kind, what the server served, and the wall time, then checks that nothing was lost:
every run accounted for, none untyped, none hung, none without its transcript, and no connection
left open once the model is closed. The exit status is 1 if anything was lost.

Slowness and latency: `--slow-rate` of the answers that are not faults come slowly (headers held
back, or the body dribbled out, over `--slow` seconds: `faultserver.SLOW`); `--latency` and
`--jitter` delay every answer. `--max-connections` is the model's connection cap (agentloop's
default when not given).

Figures: run latency p50 / p99 / max (from the moment the run is started, queueing included),
the seconds each run waited for a connection (p50 / p99 / max, from `agentloop`'s queue meter),
and memory per run: the growth of the process's peak resident set over its resident set before
the runs began, divided by the runs (they all run at once; the fault server shares the process).
A run that reaches `--run-timeout` is cut: "timed out waiting for a connection" when it was
queued for one at that moment or had spent half its time or more queued (the queue's share of
their time is shown), else "HUNG" (lost).

The script only ever talks to its own server on 127.0.0.1, and bounds itself in time (each run by
`--run-timeout`, the whole by `--time-limit`). Retry waits are shortened (50 ms backoff, server
waits of a few ms) so the figures measure the client, not the sleeps.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultserver import (
    FAULTS,
    SLOW,
    FaultServer,
    Plan,
    Request,
    fault_plan,
    ok,
    slowed,
    stream,
    tool_call,
)

from agentloop import Agent, AgentloopError, OpenAICompatible, tool
from agentloop._wire.retry import RetryPolicy
from agentloop._wire.slots import queue_meter


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=lambda: Counter[str]())
    untyped: list[str] = field(default_factory=lambda: [])
    without_transcript: int = 0
    hung: int = 0
    requests: int = 0
    retries: int = 0
    finished: int = 0
    latencies: list[float] = field(default_factory=lambda: [])
    queue_waits: list[float] = field(default_factory=lambda: [])
    timed_out_waits: list[float] = field(default_factory=lambda: [])


def handler(args: argparse.Namespace, rng: random.Random) -> Any:
    names = sorted(FAULTS)

    def handle(request: Request) -> Plan:
        streaming = request.streaming
        if rng.random() < args.fault_rate:
            return fault_plan(rng.choice(names), streaming)
        last = request.messages[-1] if request.messages else {}
        if last.get("role") == "tool":
            answer = "the sum is 5"
            plan = (stream(answer) if streaming else ok(answer)).named("ok")
        else:
            call = tool_call("add", {"a": 2, "b": 3}, "call_add")
            plan = (stream(None, [call]) if streaming else ok(None, [call])).named("ok")
        if args.slow_rate and rng.random() < args.slow_rate:
            return slowed(plan, rng.choice(SLOW), args.slow)
        return plan

    return handle


async def one_run(agent: Agent[str], streaming: bool, bound: float, tally: Tally) -> None:
    started = time.perf_counter()
    with queue_meter() as meter:
        try:
            with anyio.fail_after(bound):
                result = await _ask(agent, streaming)
        except AgentloopError as error:
            tally.outcomes[f"failed: {type(error).__name__}"] += 1
            if not error.messages or error.usage is None:
                tally.without_transcript += 1
            else:
                tally.requests += error.usage.requests
                tally.retries += error.usage.retries
        except TimeoutError:  # the run timeout: mostly in the connection queue, or hung
            share = meter.waited / (time.perf_counter() - started)
            if meter.cut or share >= 0.5:
                tally.outcomes["timed out waiting for a connection"] += 1
                tally.timed_out_waits.append(share)
            else:
                tally.hung += 1
                tally.outcomes["HUNG (run timeout)"] += 1
        except Exception as error:  # anything untyped is a bug: count it, show it
            tally.untyped.append(repr(error)[:200])
            tally.outcomes[f"UNTYPED: {type(error).__name__}"] += 1
        else:
            ok_kind = "completed after retries" if result.usage.retries else "completed"
            tally.outcomes[ok_kind] += 1
            tally.requests += result.usage.requests
            tally.retries += result.usage.retries
            assert result.output == "the sum is 5", result.output
    tally.latencies.append(time.perf_counter() - started)
    tally.queue_waits.append(meter.waited)
    tally.finished += 1


async def _ask(agent: Agent[str], streaming: bool) -> Any:
    if not streaming:
        return await agent.run("add 2 and 3")
    async with agent.run_stream("add 2 and 3") as events:
        async for _ in events:
            pass
    return events.result


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed + 1)  # the client's choices; the server has its own
    tally = Tally()
    policy = RetryPolicy(max_retries=2, initial_delay=0.05, max_delay=0.2)
    faults = handler(args, random.Random(args.seed))
    late = {"latency": args.latency, "jitter": args.jitter, "seed": args.seed}
    with FaultServer(faults, record=False, **late) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        model = OpenAICompatible(
            "m",
            base_url=server.base_url,
            api_key="sk-load",
            timeout=args.deadline,
            retry=policy,
            max_connections=args.max_connections,
        )
        agent = Agent(model, tools=[add])
        rss_before = _rss_kib()
        started = time.perf_counter()
        with anyio.move_on_after(args.time_limit) as overall:
            async with anyio.create_task_group() as group:
                for _ in range(args.runs):
                    streaming = rng.random() < args.stream_share
                    group.start_soon(one_run, agent, streaming, args.run_timeout, tally)
        wall = time.perf_counter() - started
        per_run = (_peak_rss_kib() - rss_before) / args.runs
        await model.aclose()
        closed = server.wait_closed(10)
        report(args, tally, server, wall, overall.cancelled_caught, closed)
        figures(tally, per_run)
        lost = (
            args.runs - sum(tally.outcomes.values())
            + len(tally.untyped) + tally.hung + tally.without_transcript
            + (0 if closed else server.open_connections)
        )  # fmt: skip
    print(f"lost: {lost}")
    return 1 if lost else 0


def report(
    args: argparse.Namespace,
    tally: Tally,
    server: FaultServer,
    wall: float,
    cut_short: bool,
    closed: bool,
) -> None:
    print(f"\n{args.runs} concurrent runs, fault rate {args.fault_rate:.0%}, "
          f"{args.stream_share:.0%} streamed, seed {args.seed}")  # fmt: skip
    print(f"\n{'outcome':<42}{'runs':>8}{'share':>9}")
    for kind, count in sorted(tally.outcomes.items(), key=lambda item: (-item[1], item[0])):
        print(f"{kind:<42}{count:>8}{count / args.runs:>9.1%}")
    print(f"{'total':<42}{sum(tally.outcomes.values()):>8}")
    served = sum(server.served.values())
    print(f"\n{'served by the server':<42}{'answers':>8}")
    for kind, count in sorted(server.served.items(), key=lambda item: (-item[1], item[0])):
        print(f"{kind:<42}{count:>8}")
    print(f"{'total':<42}{served:>8}")
    print(f"\nwall time: {wall:.2f} s ({served / wall:.0f} answers/s)"
          + ("  [cut short by --time-limit]" if cut_short else ""))  # fmt: skip
    print(f"requests counted by the runs: {tally.requests}, retries and re-asks: {tally.retries}")
    print(f"connections opened: {server.connections}; still open after aclose: "
          f"{server.open_connections} ({'all closed' if closed else 'LEAKED'})")  # fmt: skip
    print(f"untyped errors: {len(tally.untyped)}, hung runs: {tally.hung}, "
          f"errors without transcript: {tally.without_transcript}")  # fmt: skip
    for line in tally.untyped[:10]:
        print("  ", line)


def figures(tally: Tally, per_run_kib: float) -> None:
    """Run latency, queue wait and memory per run."""
    print(f"run latency: {_spread(tally.latencies)}")
    print(f"waiting for a connection, per run: {_spread(tally.queue_waits)}")
    if tally.timed_out_waits:
        print(f"runs cut by --run-timeout while waiting for a connection: "
              f"{len(tally.timed_out_waits)}, the queue's share of their time: "
              f"{_spread(tally.timed_out_waits, unit='', scale=100)}%")  # fmt: skip
    print(f"memory per run: {per_run_kib:.1f} KiB (peak RSS growth / runs)")


def _spread(values: list[float], unit: str = " s", scale: float = 1.0) -> str:
    """p50 / p99 / max of `values` (nearest rank)."""
    if not values:
        return "none"
    ordered = sorted(values)

    def rank(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * scale

    return (f"p50 {rank(0.5):.2f}{unit}, p99 {rank(0.99):.2f}{unit}, "
            f"max {ordered[-1] * scale:.2f}{unit}")  # fmt: skip


def _rss_kib() -> float:
    """The resident set now (Linux), else the peak so far."""
    return _proc_status("VmRSS") or _peak_rss_kib()


def _peak_rss_kib() -> float:
    """The peak resident set so far."""
    peak = _proc_status("VmHWM")
    if peak:
        return peak
    maximum = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maximum / 1024 if sys.platform == "darwin" else float(maximum)  # bytes on macOS


def _proc_status(field: str) -> float:
    """A ``kB`` figure of /proc/self/status (Linux), else 0."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=60.0, help="per request attempt, s")
    parser.add_argument("--run-timeout", type=float, default=120.0, help="per run, s")
    parser.add_argument("--time-limit", type=float, default=300.0, help="whole script, s")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--max-connections", type=int, default=None, help="the model's cap")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of slow answers")
    parser.add_argument("--slow", type=float, default=2.0, help="how slow a slow answer is, s")
    parser.add_argument("--latency", type=float, default=0.0, help="before every answer, s")
    parser.add_argument("--jitter", type=float, default=0.0, help="random extra latency, s")
    args = parser.parse_args(argv)
    return anyio.run(main_async, args, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
