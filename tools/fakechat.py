"""A deterministic extraction server on 127.0.0.1, in its own process (the scale tests and bench).

Each user message carries ``id=<key>`` and a text. The answer depends only on the request, so a
replayed or repeated request gets the same answer:

- when the request offers tools (other than the output tool) and has no tool result yet, the
  answer calls the first tool with ``{"doc_id": key}``;
- otherwise it is the JSON ``{"id": key, "words": <words in the text>}``.

Every answer waits `--latency` seconds before its headers. With `--log FILE`, each request is
appended to FILE as a JSON line ``{"id": key, "turn": <tool results in the request>}`` when it is
received (before the wait), so a test can count what the server was asked, request by request.

    python tools/fakechat.py --latency 0.2 --log requests.jsonl

prints ``READY http://127.0.0.1:PORT/v1`` once it listens, and serves until it is terminated.
`FakeChatProcess` starts and stops it from a test or a script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultserver import FaultServer, Plan, Request, ok, tool_call

__all__ = ["FakeChatProcess", "answer", "count_requests"]

_KEY = re.compile(r"id=(\S+)")


def _user_text(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = [str(t.get("function", {}).get("name")) for t in body.get("tools") or []]
    return [name for name in names if name != "final_result"]


def answer(body: dict[str, Any]) -> tuple[str, int, Plan]:
    """The key, the turn and the plan for one request body."""
    messages: list[dict[str, Any]] = body.get("messages", [])
    text = _user_text(messages)
    found = _KEY.search(text)
    key = found.group(1) if found else "?"
    turn = sum(1 for m in messages if m.get("role") == "tool")
    tools = _tool_names(body)
    if tools and turn == 0:
        call = tool_call(tools[0], {"doc_id": key}, call_id=f"call_{key}")
        return key, turn, ok(None, [call])
    words = len(text.split()) - 1  # the id=<key> token is not a word of the document
    return key, turn, ok(json.dumps({"id": key, "words": words}))


def _handler(latency: float, log: IO[str] | None) -> Any:
    lock = threading.Lock()

    def handle(request: Request) -> Plan:
        key, turn, plan = answer(request.json())
        if log is not None:
            with lock:
                log.write(json.dumps({"id": key, "turn": turn}) + "\n")
                log.flush()
        return replace(plan, header_delay=latency)

    return handle


def count_requests(log: Path) -> dict[tuple[str, int], int]:
    """How many times each (key, turn) was asked, from a `--log` file."""
    counts: dict[tuple[str, int], int] = {}
    if not log.exists():
        return counts
    for line in log.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            where = (str(item["id"]), int(item["turn"]))
            counts[where] = counts.get(where, 0) + 1
    return counts


class FakeChatProcess:
    """``with FakeChatProcess(latency=0.2, log=path) as server: server.base_url``."""

    def __init__(self, *, latency: float = 0.0, log: Path | None = None) -> None:
        self.latency, self.log = latency, log
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeChatProcess:
        command = [sys.executable, str(Path(__file__).resolve()), "--latency", str(self.latency)]
        if self.log is not None:
            command += ["--log", str(self.log)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("READY "):
            process.kill()
            raise RuntimeError(f"the fake chat server did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args(argv)
    log = args.log.open("a", encoding="utf-8") if args.log else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = FaultServer(_handler(args.latency, log), port=args.port, record=False)
    with server:
        print(f"READY {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    if log is not None:
        log.close()
    os._exit(0)


if __name__ == "__main__":
    main()
