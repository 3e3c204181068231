"""The transports a cassette puts under every model: one that records what the real transport
sends and reads, and one that answers from the recording without a network.

Both speak agentloop's own `Transport` / `Reply` seam (`agentloop._wire.transport`), under the
request building, retries and response parsing, so a replay runs all of those for real. The
recorded body is what the client read: decoded from gzip, an event stream in the pieces in
which it arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from anyio.lowlevel import checkpoint

from ._cassette_format import (
    decode_piece,
    encode_piece,
    kept_headers,
    request_body,
    scrub_bytes,
    scrub_text,
    secrets_of,
)

if TYPE_CHECKING:
    from .._wire.transport import Reply, Transport

__all__ = [
    "Entry",
    "RecordingTransport",
    "ReplayTransport",
    "ReplayedConnectionError",
    "ReplayedTimeoutError",
    "replayed_error",
]


class ReplayedConnectionError(ConnectionError):
    """A connection failure the cassette recorded, raised again on replay."""


class ReplayedTimeoutError(TimeoutError):
    """A timeout the cassette recorded, raised again on replay."""


def replayed_error(error: Mapping[str, Any]) -> Exception:
    message = str(error.get("message", "recorded failure"))
    if error.get("kind") == "timeout":
        return ReplayedTimeoutError(message)
    return ReplayedConnectionError(message)


class Entry:
    """One exchange being recorded: the request, then what came back, as the file keeps it."""

    __slots__ = ("_body", "_chunks", "error", "request", "response", "secrets")

    def __init__(self, url: str, content: bytes, headers: Mapping[str, str]) -> None:
        self.secrets: set[str] = secrets_of(url, headers)
        self.request: dict[str, Any] = {
            "method": "POST",
            "url": scrub_text(url, self.secrets),
            "body": request_body(content, self.secrets),
        }
        self.response: dict[str, Any] | None = None
        self.error: dict[str, str] | None = None
        self._body: bytes | None = None
        self._chunks: list[bytes] | None = None

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        self.response = {"status": status, "headers": kept_headers(headers, self.secrets)}

    def body(self, raw: bytes) -> None:
        self._body = raw

    def chunk(self, raw: bytes) -> None:
        if self._chunks is None:
            self._chunks = []
        self._chunks.append(raw)

    def failed(self, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.error = {"kind": kind, "message": scrub_text(message, self.secrets)}

    def to_json(self) -> dict[str, Any]:
        exchange: dict[str, Any] = {"request": self.request}
        if self.response is not None:
            response = dict(self.response)
            if self._body is not None:
                response["body"] = encode_piece(scrub_bytes(self._body, self.secrets))
            elif self._chunks is not None:
                response["chunks"] = [
                    encode_piece(scrub_bytes(chunk, self.secrets)) for chunk in self._chunks
                ]
            exchange["response"] = response
        if self.error is not None:
            exchange["error"] = self.error
        return exchange


class _Recorder(Protocol):
    """Where recording transports put their entries (the cassette)."""

    def start(self, entry: Entry) -> None: ...

    def drop(self, entry: Entry) -> None: ...


class RecordingTransport:
    """The real transport, with every exchange written down as it happens."""

    __slots__ = ("_inner", "_recorder", "errors", "holds_deadline")

    def __init__(self, recorder: _Recorder, inner: Transport) -> None:
        self._recorder = recorder
        self._inner = inner
        self.errors: tuple[type[BaseException], ...] = inner.errors
        self.holds_deadline: bool = inner.holds_deadline

    @property
    def is_closed(self) -> bool:
        return self._inner.is_closed

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], limit: float | None = None
    ) -> Reply:
        entry = Entry(url, content, headers)
        self._recorder.start(entry)
        try:
            reply = await self._inner.post(url, content, headers, limit)
        except self.errors as exc:
            entry.failed(exc)
            raise
        except BaseException:  # cancelled (a deadline, or the caller): nothing to replay
            self._recorder.drop(entry)
            raise
        entry.answered(reply.status, reply.headers)
        return _RecordingReply(reply, entry, self.errors)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _RecordingReply:
    __slots__ = ("_entry", "_errors", "_inner")

    def __init__(self, inner: Reply, entry: Entry, errors: tuple[type[BaseException], ...]) -> None:
        self._inner = inner
        self._entry = entry
        self._errors = errors

    @property
    def status(self) -> int:
        return self._inner.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._inner.headers

    async def read(self) -> bytes:
        try:
            raw = await self._inner.read()
        except self._errors as exc:
            self._entry.failed(exc)
            raise
        self._entry.body(raw)
        return raw

    async def next_chunk(self) -> bytes | None:
        try:
            chunk = await self._inner.next_chunk()
        except self._errors as exc:
            self._entry.failed(exc)
            raise
        if chunk is not None:
            self._entry.chunk(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Player(Protocol):
    """Where replaying transports find their answers (the cassette)."""

    def take(self, url: str, content: bytes, headers: Mapping[str, str]) -> Mapping[str, Any]: ...


class ReplayTransport:
    """Answers from the cassette; never opens a connection."""

    __slots__ = ("_player",)

    errors: tuple[type[BaseException], ...] = (ReplayedConnectionError, ReplayedTimeoutError)
    holds_deadline = False

    def __init__(self, player: _Player) -> None:
        self._player = player

    @property
    def is_closed(self) -> bool:
        return False

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], limit: float | None = None
    ) -> Reply:
        await checkpoint()
        exchange = self._player.take(url, content, headers)
        response: Mapping[str, Any] | None = exchange.get("response")
        error: Mapping[str, Any] | None = exchange.get("error")
        if response is None:
            raise replayed_error(error or {})
        return _ReplayReply(response, error)

    async def aclose(self) -> None:
        return None


class _ReplayReply:
    __slots__ = ("_error", "_headers", "_pieces", "_status")

    def __init__(self, response: Mapping[str, Any], error: Mapping[str, Any] | None) -> None:
        self._status: int = int(response["status"])
        headers: Mapping[str, str] = response.get("headers") or {}
        self._headers = {name.lower(): str(value) for name, value in headers.items()}
        if "chunks" in response:
            pieces = [decode_piece(piece) for piece in response["chunks"]]
        elif "body" in response:
            pieces = [decode_piece(response["body"])]
        else:
            pieces = []
        self._pieces = pieces
        self._error = error

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    async def read(self) -> bytes:
        await checkpoint()
        pieces, self._pieces = self._pieces, []
        if self._error is not None:
            raise replayed_error(self._error)
        return b"".join(pieces)

    async def next_chunk(self) -> bytes | None:
        await checkpoint()
        if self._pieces:
            return self._pieces.pop(0)
        if self._error is not None:
            raise replayed_error(self._error)
        return None

    async def aclose(self) -> None:
        self._pieces = []
        self._error = None
