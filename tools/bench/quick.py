"""Minimal benchmark (partial work on issue 7): agentloop against a raw httpx loop.

Usage: .venv/bin/python tools/bench/quick.py [--runs 300]

A canned chat-completions server (an asyncio protocol, its own process, pinned to core 1 when
`taskset` exists) answers a tool call, then a final text. Each client (raw httpx loop, agentloop)
runs in its own subprocess pinned to core 0 and reports client CPU per run (process_time) and wall
per run. Peers (openai SDK, pydantic-ai, openai-agents, instructor), concurrency, streaming and
import scenarios are not written yet.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

TOOL = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":1,"b":2}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}
TEXT = {
    "id": "c2",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "3"}}
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
}

SERVER = r"""
import asyncio, json, sys
TOOL, TEXT = (json.dumps(x).encode() for x in json.loads(sys.argv[2]))
def reply(body):
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % len(body) + body
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, d):
        self.buf += d
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep: return
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length": n = int(v)
            if len(rest) < n: return
            body, self.buf = rest[:n], rest[n:]
            self.t.write(reply(TEXT if b'"role":"tool"' in body.replace(b" ", b"") else TOOL))
async def main():
    s = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await s.serve_forever()
asyncio.run(main())
"""

RAW = r"""
import asyncio, json, sys, time, httpx
port, runs = int(sys.argv[1]), int(sys.argv[2])
async def one(c):
    msgs = [{"role": "user", "content": "add 1 and 2"}]
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object",
             "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}]
    while True:
        body = {"model": "m", "messages": msgs, "tools": tools}
        r = await c.post("/v1/chat/completions", json=body)
        m = r.json()["choices"][0]["message"]
        msgs.append(m)
        if not m.get("tool_calls"):
            return m["content"]
        for tc in m["tool_calls"]:
            a = json.loads(tc["function"]["arguments"])
            msgs.append({"role": "tool", "tool_call_id": tc["id"], "content": str(a["a"] + a["b"])})
async def main():
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        for _ in range(20): await one(c)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(runs): assert await one(c) == "3"
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(json.dumps({"cpu": cpu / runs, "wall": wall / runs}))
asyncio.run(main())
"""

AGENTLOOP = r"""
import asyncio, json, sys, time
from agentloop import Agent, OpenAICompatible, tool
port, runs = int(sys.argv[1]), int(sys.argv[2])
@tool
def add(a: int, b: int) -> int:
    "Add two integers."
    return a + b
async def main():
    model = OpenAICompatible("m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    agent = Agent(model, tools=[add])
    for _ in range(20): await agent.run("add 1 and 2")
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(runs): assert (await agent.run("add 1 and 2")).output == "3"
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(json.dumps({"cpu": cpu / runs, "wall": wall / runs}))
    await model.aclose()
asyncio.run(main())
"""


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--port", type=int, default=18731)
    args = ap.parse_args()
    srv = subprocess.Popen(
        [*_pin(1), sys.executable, "-c", SERVER, str(args.port), json.dumps([TOOL, TEXT])],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "ready"
        rows: dict[str, list[dict[str, float]]] = {}
        for name, code in (("raw httpx loop", RAW), ("agentloop", AGENTLOOP)):
            for _ in range(args.reps):
                out = subprocess.run(
                    [*_pin(0), sys.executable, "-c", code, str(args.port), str(args.runs)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                rows.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
        floor = sorted(r["cpu"] for r in rows["raw httpx loop"])[args.reps // 2]
        print(
            f"{'client':<16}{'cpu/run med':>12}{'min':>9}{'max':>9}{'wall/run':>10}{'x floor':>9}"
        )
        for name, rs in rows.items():
            cpu = sorted(r["cpu"] for r in rs)
            wall = sorted(r["wall"] for r in rs)[args.reps // 2]
            med = cpu[args.reps // 2]
            print(
                f"{name:<16}{med * 1e3:>10.3f}ms{cpu[0] * 1e3:>8.3f}{cpu[-1] * 1e3:>9.3f}"
                f"{wall * 1e3:>8.3f}ms{med / floor:>8.2f}x"
            )
    finally:
        srv.terminate()
        srv.wait(timeout=5)
        time.sleep(0)


if __name__ == "__main__":
    main()
