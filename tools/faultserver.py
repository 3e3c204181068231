"""A fault-injecting chat-completions server on 127.0.0.1 (reliability tests and tools/load.py).

One asyncio event loop in a background thread serves every connection, so thousands of
concurrent clients cost no threads, whatever the caller's async backend. Connections are kept
alive (HTTP/1.1) unless a fault closes them; the server counts them, so a test can check that a
client closed everything it opened (`open_connections`) and that no answer is still being written
(`busy`).

Each request gets the next scripted `Plan` (`script`), or what `handler(request)` returns. A
`Plan` says exactly what goes on the wire: status, headers, body pieces (re-split to `split` bytes
if asked), a delay before the headers, a delay between pieces, a close or a TCP reset after some
pieces, a piece repeated forever (keep-alive comments), a lying Content-Length, or no answer.
Builders below make the common ones: `ok`, `stream`, `error`, `html_error`, `tool_call`, and the
wire-level helpers `completion`, `chunks_of` and `sse_bytes`. `refused_url` gives a base URL on
which nothing listens.

    with FaultServer() as server:
        server.script(error(503, headers={"retry-after-ms": "10"}), ok("hello"))
        model = OpenAICompatible("m", base_url=server.base_url, api_key="k")

Slowness: `slowed(plan, kind, seconds)` delays an answer's headers (``slow_headers``) or spreads
its body over the seconds given (``slow_body``), one of `SLOW`; ``FaultServer(latency=,
jitter=)`` delays every answer's headers by a base latency plus a uniform random jitter.

Standalone: ``python tools/faultserver.py --port 8099 --fault-rate 0.05`` answers every request
with a short text, or a random fault of `FAULTS` with the given probability.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "FAULTS",
    "SLOW",
    "FaultServer",
    "Plan",
    "Request",
    "chunks_of",
    "completion",
    "error",
    "html_error",
    "ok",
    "refused_url",
    "slowed",
    "sse_bytes",
    "stream",
    "tool_call",
]

_LOCAL = ("127.0.0.1", "localhost", "::1")
_REASONS = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 401: "Unauthorized",
            402: "Payment Required", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip


@dataclass
class Request:
    """One request the server read. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    connection: int

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.json().get("messages", []))

    @property
    def streaming(self) -> bool:
        return bool(self.json().get("stream"))


@dataclass
class Plan:
    """Exactly what the server does with one request (see the module docstring)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {})
    pieces: Sequence[bytes] = ()
    header_delay: float = 0.0
    chunk_delay: float = 0.0
    split: int | None = None
    abort_after: int | None = None
    abort: Literal["close", "reset"] = "close"
    forever: bytes | None = None
    content_length: int | None = None
    no_response: bool = False
    keep_alive: bool = True
    name: str = ""

    def named(self, name: str) -> Plan:
        return replace(self, name=name)

    def body_pieces(self) -> list[bytes]:
        pieces = list(self.pieces)
        if self.split:
            joined = b"".join(pieces)
            pieces = [joined[i : i + self.split] for i in range(0, len(joined), self.split)]
        return pieces


# --- wire builders ------------------------------------------------------------------------------


def tool_call(name: str, arguments: Any = None, call_id: str | None = "call_1") -> dict[str, Any]:
    """A wire tool call; `arguments` as given when a string, else as JSON."""
    args = arguments if isinstance(arguments, str) or arguments is None else json.dumps(arguments)
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if call_id is not None:
        call["id"] = call_id
    return call


def completion(
    content: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    *,
    usage: tuple[int, int] = (10, 5),
    finish: str | None = None,
    cost: float | None = None,
    model: str = "m",
) -> dict[str, Any]:
    """A whole chat-completions body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    finish = finish or ("tool_calls" if tool_calls else "stop")
    counts: dict[str, Any] = {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": sum(usage),
    }
    if cost is not None:
        counts["cost"] = cost
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": counts,
    }


def _chunk(choices: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    head: dict[str, Any] = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1}
    return {**head, "model": "m", "choices": choices if choices is not None else [], **extra}


def chunks_of(
    content: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    *,
    usage: tuple[int, int] | None = (10, 5),
    finish: str | None = None,
    pieces: int = 3,
) -> list[dict[str, Any]]:
    """The chunks a server streams for an answer: text in `pieces` fragments, each tool call as
    a first delta (index, id, name, ``""``) and argument fragments, a finish chunk and a
    usage-only chunk."""
    chunks = [_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    text = content or ""
    step = max(1, -(-len(text) // pieces))
    for start in range(0, len(text), step):
        delta = {"content": text[start : start + step]}
        chunks.append(_chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    for index, call in enumerate(tool_calls):
        fn = call["function"]
        first = {"index": index, "type": "function", "function": {"name": fn["name"]}}
        first["function"]["arguments"] = ""
        if "id" in call:
            first["id"] = call["id"]
        chunks.append(_chunk([{"index": 0, "delta": {"tool_calls": [first]}}]))
        args = fn.get("arguments") or ""
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            if part:
                frag = {"index": index, "function": {"arguments": part}}
                chunks.append(_chunk([{"index": 0, "delta": {"tool_calls": [frag]}}]))
    finish = finish or ("tool_calls" if tool_calls else "stop")
    chunks.append(_chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
    if usage is not None:
        total = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
        chunks.append(_chunk([], usage={**total, "total_tokens": sum(usage)}))
    return chunks


def sse_bytes(
    events: Iterable[Any],
    *,
    done: bool = True,
    newline: str = "\n",
    bom: bool = False,
    comments: int = 0,
) -> list[bytes]:
    """One piece per event (``data:`` of a dict as JSON, or a string as is), then ``[DONE]``;
    `comments` keep-alive comments before each event; lines end in `newline`."""
    out: list[bytes] = []
    nl = newline
    for item in events:
        data = item if isinstance(item, str) else json.dumps(item)
        text = f": OPENROUTER PROCESSING{nl}{nl}" * comments + f"data: {data}{nl}{nl}"
        out.append(text.encode())
    if done:
        out.append(f"data: [DONE]{nl}{nl}".encode())
    if bom and out:
        out[0] = b"\xef\xbb\xbf" + out[0]
    return out


def ok(content: str | None = "ok", tool_calls: Sequence[dict[str, Any]] = (), **kw: Any) -> Plan:
    """A 200 JSON answer."""
    body = json.dumps(completion(content, tool_calls, **kw)).encode()
    return Plan(200, {"Content-Type": "application/json"}, [body], name="ok")


def stream(
    content: str | None = "ok",
    tool_calls: Sequence[dict[str, Any]] = (),
    *,
    events: Sequence[Any] | None = None,
    done: bool = True,
    newline: str = "\n",
    bom: bool = False,
    comments: int = 0,
    usage: tuple[int, int] | None = (10, 5),
    **plan: Any,
) -> Plan:
    """A 200 event stream of an answer (or of `events` as given)."""
    items = events if events is not None else chunks_of(content, tool_calls, usage=usage)
    pieces = sse_bytes(items, done=done, newline=newline, bom=bom, comments=comments)
    headers = {"Content-Type": "text/event-stream; charset=utf-8", **plan.pop("headers", {})}
    return Plan(200, headers, pieces, name="stream", **plan)


def error(
    status: int,
    message: str = "injected fault",
    *,
    code: Any = None,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Plan:
    """An error answer with an OpenAI-shaped JSON body (OpenRouter's with `metadata`)."""
    fields: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if metadata is not None:
        fields["metadata"] = dict(metadata)
    body = json.dumps({"error": fields}).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return Plan(status, all_headers, [body], name=f"error_{status}")


def html_error(status: int = 502) -> Plan:
    """A proxy's HTML error page."""
    reason = _REASONS.get(status, "Error")
    page = f"<html><head><title>{status}</title></head><body><h1>{status} {reason}</h1>"
    page += "<hr><center>nginx</center></body></html>"
    return Plan(status, {"Content-Type": "text/html"}, [page.encode()], name=f"html_{status}")


def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/v1"


# --- faults for the load script and the standalone server --------------------------------------

FAULTS: dict[str, Callable[[bool], Plan]] = {
    "429_retry_after_ms": lambda s: error(429, headers={"retry-after-ms": "5"}),
    "503_retryable": lambda s: error(503, code=503),
    "502_html": lambda s: html_error(502),
    "500_should_retry_false": lambda s: error(500, headers={"x-should-retry": "false"}),
    "429_quota": lambda s: error(429, "quota", code="insufficient_quota"),
    "402_credits": lambda s: error(402, "Insufficient credits", code=402),
    "403_moderation": lambda s: error(
        403, "Input flagged", code=403, metadata={"reasons": ["violence"], "flagged_input": "x"}
    ),
    "400_bad_request": lambda s: error(400, "bad", kind="invalid_request_error"),
    "reset": lambda s: Plan(no_response=True, abort="reset"),
    "close": lambda s: Plan(no_response=True),
    "body_cut": lambda s: Plan(
        200,
        {"Content-Type": "application/json"},
        [b'{"id": "x", '],
        content_length=400,
        abort_after=1,
        keep_alive=False,
    ),
    "malformed_json": lambda s: Plan(
        200,
        {"Content-Type": "text/event-stream" if s else "application/json"},
        [b"data: {not json\n\n" if s else b"{not json"],
    ),
    "stream_error_event": lambda s: stream(
        events=[{"error": {"message": "upstream died", "code": 502}}]
    ),
    "stream_cut": lambda s: stream(
        "partial answer", done=False, usage=None, abort_after=2, abort="reset", keep_alive=False
    ),
}


def fault_plan(name: str, streaming: bool) -> Plan:
    return FAULTS[name](streaming).named(name)


SLOW = ("slow_headers", "slow_body")
"""The ways `slowed` slows an answer down (it still arrives whole)."""


def slowed(plan: Plan, kind: str, seconds: float) -> Plan:
    """`plan` with its headers held back `seconds` (``slow_headers``), or its body sent in four
    pieces or more spread over `seconds` (``slow_body``); named after the kind."""
    if kind == "slow_headers":
        return replace(plan, header_delay=plan.header_delay + seconds, name=kind)
    if kind != "slow_body":
        raise ValueError(f"no such slowness: {kind!r} (one of {SLOW})")
    pieces = plan.body_pieces()
    if len(pieces) < 4:  # a JSON body: cut in four, sent with chunked encoding
        plan = replace(plan, split=max(1, -(-sum(map(len, pieces)) // 4)))
        pieces = plan.body_pieces()
    return replace(plan, chunk_delay=seconds / max(1, len(pieces) - 1), name=kind)


# --- the server ---------------------------------------------------------------------------------


class FaultServer:
    """The server; a context manager (or `start` / `stop`). Only ever binds 127.0.0.1."""

    def __init__(
        self,
        handler: Callable[[Request], Plan] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        latency: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if host not in _LOCAL:
            raise ValueError(f"the fault server only listens on loopback, not {host!r}")
        self.handler = handler
        self.latency, self.jitter = latency, jitter
        self._jitter = random.Random(seed)  # used on the server's thread only
        self.host, self.port = host, port
        self.record = record
        self.requests: list[Request] = []
        self.served: dict[str, int] = {}
        self.connections = 0
        self.open_connections = 0
        self.busy = 0
        self._replies: deque[Plan] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._stopping = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *plans: Plan) -> None:
        """Queue plans, used one per request in order (before `handler`)."""
        with self._lock:
            self._replies.extend(plans)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def __enter__(self) -> FaultServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault server did not start")

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            self._stopping = True
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Wait until the clients closed every connection; False on timeout."""
        return self._wait(lambda: self.open_connections == 0, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no answer is being written; False on timeout."""
        return self._wait(lambda: self.busy == 0, timeout)

    @staticmethod
    def _wait(done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return done()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._client, self.host, self.port, backlog=8192)
            )
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            loop.run_until_complete(asyncio.sleep(0))
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            loop.close()

    def _next(self, request: Request) -> Plan:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.handler is not None:
            return self.handler(request)
        return error(500, "fault server: no plan scripted")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
            self.open_connections += 1
            number = self.connections
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader, number)
                if request is None:
                    break
                plan = self._next(request)
                with self._lock:
                    if self.record:
                        self.requests.append(request)
                    self.served[plan.name or "?"] = self.served.get(plan.name or "?", 0) + 1
                    self.busy += 1
                try:
                    keep = await self._respond(reader, writer, plan)
                finally:
                    with self._lock:
                        self.busy -= 1
                if not keep:
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            with self._lock:
                self.open_connections -= 1

    @staticmethod
    def _drop(writer: asyncio.StreamWriter, how: str) -> None:
        if how == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    async def _pause(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float
    ) -> bool:
        """Wait `seconds`; False as soon as the client went away or the server stops."""
        end = time.monotonic() + seconds
        while True:
            if reader.at_eof() or writer.transport.is_closing() or self._stopping:
                return False
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, 0.02))

    async def _respond(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, plan: Plan
    ) -> bool:
        """Write `plan`; True when the connection may serve another request."""
        if plan.no_response:
            self._drop(writer, plan.abort)
            return False
        delay = plan.header_delay + self.latency
        if self.jitter:
            delay += self._jitter.uniform(0.0, self.jitter)
        if delay and not await self._pause(reader, writer, delay):
            return False
        pieces = plan.body_pieces()
        chunked = plan.content_length is None and (len(pieces) != 1 or plan.forever is not None)
        keep = plan.keep_alive and plan.abort_after is None
        headers = {"Connection": "keep-alive" if keep else "close", **plan.headers}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            size = plan.content_length
            headers["Content-Length"] = str(size if size is not None else len(b"".join(pieces)))
        head = f"HTTP/1.1 {plan.status} {_REASONS.get(plan.status, 'Status')}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n")
        await writer.drain()
        for index, piece in enumerate(pieces):
            if plan.abort_after is not None and index >= plan.abort_after:
                self._drop(writer, plan.abort)
                return False
            if (
                index
                and plan.chunk_delay
                and not await self._pause(reader, writer, plan.chunk_delay)
            ):
                return False
            writer.write(_frame(piece) if chunked else piece)
            await writer.drain()
        if plan.abort_after is not None:
            self._drop(writer, plan.abort)
            return False
        while plan.forever is not None:
            if not await self._pause(reader, writer, plan.chunk_delay or 0.05):
                return False
            writer.write(_frame(plan.forever))
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return keep


def _frame(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b""


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    path = target.split("?", 1)[0]
    return Request(method, path, headers, body, time.monotonic(), connection)


# --- standalone ---------------------------------------------------------------------------------


def random_faults(rate: float, rng: random.Random | None = None) -> Callable[[Request], Plan]:
    """A handler that answers with text, or with a random fault of `FAULTS` at `rate`."""
    chooser = rng or random.Random()
    names = sorted(FAULTS)

    def handle(request: Request) -> Plan:
        streaming = request.streaming
        if chooser.random() < rate:
            return fault_plan(chooser.choice(names), streaming)
        return (stream("ok") if streaming else ok("ok")).named("ok")

    return handle


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--latency", type=float, default=0.0, help="before every answer, s")
    parser.add_argument("--jitter", type=float, default=0.0, help="random extra latency, s")
    args = parser.parse_args(argv)
    handler = random_faults(args.fault_rate)
    server = FaultServer(
        handler, port=args.port, record=False, latency=args.latency, jitter=args.jitter
    )
    with server:
        print(f"fault server on {server.base_url} (fault rate {args.fault_rate:g}); Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)


if __name__ == "__main__":
    main()
