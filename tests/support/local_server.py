"""A real, scriptable HTTP/1.1 server on 127.0.0.1 for transport tests.

It runs in background threads (one per connection), so it works whatever the test's async
backend. Every connection serves one request and closes. Each request gets the next scripted
`Reply` (or what `handler` returns); every request is recorded.

    with LocalServer() as server:
        server.script(Reply(503), Reply(200, json_body={...}))
        ... post to server.url("/v1/chat/completions") ...
        assert server.requests[0].headers["authorization"] == "Bearer k"

A `Reply` can delay its headers, send its body in chunks with pauses between them, drop the
connection (a clean close or a TCP reset) after some chunks, or send one chunk forever (SSE
keep-alive comments). `Reply.drop()` closes the connection without answering at all.
Extend it by subclassing `LocalServer` and overriding `respond` (a later fault-injection suite
does that).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = ["LocalServer", "Recorded", "Reply", "sse"]

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def sse(*events: Any, done: bool = True) -> list[bytes]:
    """SSE chunks: one ``data:`` event per item (dicts as JSON), then ``[DONE]``."""
    chunks = [
        f"data: {item if isinstance(item, str) else json.dumps(item)}\n\n".encode()
        for item in events
    ]
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


@dataclass
class Reply:
    """What the server does with one request.

    - `chunks`: the body in pieces, written with `chunk_delay` seconds between them (chunked
      transfer encoding unless `content_length` is given); `body` / `json_body`: one piece.
    - `header_delay`: seconds to wait before sending the status line.
    - `abort_after`: drop the connection after this many chunks (`abort` says how: ``close``
      or ``reset``); with ``0`` the headers are sent, then the connection drops.
    - `forever`: after the chunks, send this chunk every `chunk_delay` seconds until the client
      goes away or the server stops.
    - `content_length`: announce this length (even if the body is shorter: a truncated body).
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {})
    body: bytes | str | None = None
    json_body: Any = None
    chunks: Sequence[bytes | str] = ()
    header_delay: float = 0.0
    chunk_delay: float = 0.0
    abort_after: int | None = None
    abort: Literal["close", "reset"] = "close"
    forever: bytes | None = None
    content_length: int | None = None
    no_response: bool = False

    @classmethod
    def drop(cls, *, reset: bool = False) -> Reply:
        """Read the request, then close (or reset) the connection without a response."""
        return cls(no_response=True, abort="reset" if reset else "close")

    @classmethod
    def stream(cls, chunks: Iterable[bytes | str], **kwargs: Any) -> Reply:
        """A 200 event stream of `chunks`."""
        headers = {"Content-Type": "text/event-stream; charset=utf-8", **kwargs.pop("headers", {})}
        return cls(200, headers=headers, chunks=list(chunks), **kwargs)

    def pieces(self) -> list[bytes]:
        if self.json_body is not None:
            return [json.dumps(self.json_body).encode()]
        if self.body is not None:
            return [self.body.encode() if isinstance(self.body, str) else self.body]
        return [c.encode() if isinstance(c, str) else c for c in self.chunks]


@dataclass
class Recorded:
    """One request the server got. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class LocalServer:
    """The server; a context manager. `handler`, when given, answers instead of the script."""

    def __init__(self, handler: Callable[[Recorded], Reply] | None = None) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self.connections = 0
        self.active = 0
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Queue replies, used one per request in order."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def __enter__(self) -> LocalServer:
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        thread = threading.Thread(target=self._accept_loop, name="local-server", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept at once
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is being served; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.active

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with self._lock:
            self.active += 1
        try:
            request = self._read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            self.respond(conn, self._next_reply(request))
        except OSError:
            pass  # the client went away
        finally:
            conn.close()
            with self._lock:
                self.active -= 1

    def _next_reply(self, request: Recorded) -> Reply:
        if self.handler is not None:
            return self.handler(request)
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return Reply(500, json_body={"error": {"message": "local server: no reply scripted"}})

    @staticmethod
    def _read_request(conn: socket.socket) -> Recorded | None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            piece = conn.recv(65536)
            if not piece:
                break
            rest += piece
        parts = urlsplit(target)
        return Recorded(method, parts.path, parse_qs(parts.query), headers, rest, time.monotonic())

    def _sleep(self, seconds: float) -> bool:
        """Wait; False when the server is stopping."""
        return not self._stop.wait(seconds) if seconds > 0 else not self._stop.is_set()

    @staticmethod
    def _drop(conn: socket.socket, how: str) -> None:
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            conn.shutdown(socket.SHUT_RDWR)

    def respond(self, conn: socket.socket, reply: Reply) -> None:
        """Write `reply` on `conn`. Override to add behaviours."""
        if reply.no_response:
            self._drop(conn, reply.abort)
            return
        if not self._sleep(reply.header_delay):
            return
        pieces = reply.pieces()
        chunked = reply.content_length is None and (len(pieces) != 1 or reply.forever is not None)
        headers = {"Connection": "close", **reply.headers}
        if reply.json_body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            length = reply.content_length
            headers["Content-Length"] = str(length if length is not None else len(pieces[0]))
        reason = _REASONS.get(reply.status, "Status")
        head = f"HTTP/1.1 {reply.status} {reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        conn.sendall(head.encode("latin-1") + b"\r\n")
        for index, piece in enumerate(pieces):
            if reply.abort_after is not None and index >= reply.abort_after:
                self._drop(conn, reply.abort)
                return
            if index and not self._sleep(reply.chunk_delay):
                return
            conn.sendall(_frame(piece) if chunked else piece)
        if reply.abort_after is not None and reply.abort_after >= len(pieces):
            self._drop(conn, reply.abort)
            return
        while reply.forever is not None and self._sleep(reply.chunk_delay or 0.05):
            conn.sendall(_frame(reply.forever))
        if chunked:
            conn.sendall(b"0\r\n\r\n")


def _frame(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b""
