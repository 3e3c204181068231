"""A fast, deterministic fake chat-completions server for the benchmark (stdlib asyncio only).

Run: ``python server.py PORT`` (prints ``ready`` when it listens). Every answer is canned bytes,
chosen by looking at the raw request body, never by parsing its JSON:

- a body with ``"stream": true`` gets an event stream of `CHUNKS` text deltas (one write per
  event, HTTP chunked), then a finish chunk, a usage chunk and ``[DONE]``;
- a body that already holds a tool result (``"role": "tool"``) gets the final answer: the JSON of
  a structured report when the body asks for a ``response_format``, else the text ``"3"``;
- any other body gets one tool call, ``add(a=1, b=2)``.

A path starting with ``/latNNN/`` delays the answer by NNN milliseconds (a timer, no CPU).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

CHUNKS = 500
USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
REPORT = {
    "title": "Sum of two integers",
    "answer": 3,
    "confidence": 0.97,
    "verified": True,
    "steps": [
        {"name": "read", "detail": "read the operands 1 and 2"},
        {"name": "add", "detail": "called the add tool"},
        {"name": "check", "detail": "3 - 2 == 1"},
    ],
}


def _completion(message: dict[str, object], finish: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": USAGE,
    }
    raw = json.dumps(body).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % len(raw) + raw


TOOL_CALL = _completion(
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
            }
        ],
    },
    "tool_calls",
)
TEXT = _completion({"role": "assistant", "content": "3"}, "stop")
STRUCTURED = _completion({"role": "assistant", "content": json.dumps(REPORT)}, "stop")


def _event(
    delta: dict[str, object] | None, finish: str | None = None, usage: bool = False
) -> bytes:
    chunk: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = USAGE
    data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
STREAM_EVENTS = [
    _event({"role": "assistant", "content": ""}),
    *(_event({"content": f"w{i} "}) for i in range(CHUNKS)),
    _event({}, "stop"),
    _event(None, usage=True),
    b"%x\r\ndata: [DONE]\n\n\r\n" % len(b"data: [DONE]\n\n"),
    b"0\r\n\r\n",
]


def choose(body: bytes) -> bytes | None:
    """The canned answer for a body; None means "stream"."""
    if b'"stream":true' in body or b'"stream": true' in body:
        return None
    if b'"role":"tool"' in body or b'"role": "tool"' in body:
        return STRUCTURED if b'"response_format"' in body else TEXT
    return TOOL_CALL


class Protocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.streaming = False
        self.queue: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            body, self.buffer = rest[:length], rest[length:]
            path = lines[0].split(b" ")[1]
            delay = int(path[4:].split(b"/")[0]) / 1000 if path.startswith(b"/lat") else 0.0
            answer = choose(body)
            loop = asyncio.get_running_loop()
            if answer is None:
                loop.call_later(delay, self.stream, 0) if delay else self.stream(0)
            elif delay:
                loop.call_later(delay, self.write, answer)
            else:
                self.write(answer)

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def stream(self, index: int) -> None:
        """One event per write, each in its own loop iteration (as a real server sends them)."""
        if index == 0:
            self.write(STREAM_HEAD)
        self.write(STREAM_EVENTS[index])
        if index + 1 < len(STREAM_EVENTS):
            asyncio.get_running_loop().call_soon(self.stream, index + 1)


async def main(port: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Protocol, "127.0.0.1", port, backlog=8192)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
