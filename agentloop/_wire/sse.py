"""An incremental decoder for server-sent events (the WHATWG ``text/event-stream`` rules).

Bytes go in as they arrive, in chunks of any size; complete events come out. Only the current
line and the current event are held, never the whole stream. Whole chunks are scanned with
`str.split`, not byte by byte, so decoding costs little beside the network read.

Rules followed: a UTF-8 BOM at the very start is dropped (also when split across chunks); lines
end in CRLF, LF or CR, and a CRLF split across two chunks is one line end; ``data`` lines join
with ``"\\n"``; ``event``, ``id`` (ignored when it contains NUL; it persists to later events, as
the last event id does in browsers) and ``retry`` (digits only) are read; a line without a colon
is a field name with an empty value; one space after the colon is dropped; lines starting with
``:`` are comments (counted); unknown fields are ignored; an event without any ``data`` line is
not dispatched. Invalid UTF-8 becomes U+FFFD, as browsers do.

One deliberate departure from WHATWG: at the end of input (`SSEDecoder.close`) a pending event
that has data is dispatched even though its blank line never came, and an unterminated last
line is read as a line. Servers that end with ``data: [DONE]`` and no newline exist, and losing
their last event would turn a complete answer into an incomplete one.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from .._errors import ProtocolError

__all__ = ["SSEDecoder", "SSEEvent", "aiter_sse"]

_DEFAULT_MAX = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `id` is the last event id seen so far in the stream."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes with `feed`, end with `close`; both return the events completed so far.

    `max_event_size` bounds the characters of one event (its data and its current line); a
    larger event raises `ProtocolError` instead of growing memory without end.
    """

    __slots__ = (
        "_bom_done",
        "_data",
        "_data_size",
        "_decoder",
        "_event",
        "_last_id",
        "_max",
        "_partial",
        "_partial_size",
        "_pending_cr",
        "_retry",
        "comments",
    )

    def __init__(self, max_event_size: int = _DEFAULT_MAX) -> None:
        self._max = max_event_size
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._bom_done = False
        self._pending_cr = False
        self._partial: list[str] = []
        self._partial_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode one chunk; return the events it completed."""
        text = self._decoder.decode(chunk)
        if (
            text.endswith("\n\n")
            and self._bom_done
            and not self._partial
            and not self._data
            and self._event is None
            and self._retry is None
            and not self._pending_cr
            and "\r" not in text
        ):
            fast = self._whole_data_events(text)
            if fast is not None:
                return fast
        if self._bom_done and "\n" not in text and "\r" not in text and not self._pending_cr:
            if text:  # no line end: the current line grows, nothing else can happen
                self._partial.append(text)
                self._partial_size += len(text)
                if self._partial_size + self._data_size > self._max:
                    self._too_big()
            return []
        return self._feed_text(text)

    def _whole_data_events(self, text: str) -> list[SSEEvent] | None:
        """The common chunk, whole events of one ``data: `` line each, without the line
        machinery (the same events it would give); None for anything else."""
        events: list[SSEEvent] = []
        for block in text[:-2].split("\n\n"):
            if not block.startswith("data: ") or "\n" in block or len(block) > self._max:
                return None
            events.append(SSEEvent(block[6:], "message", self._last_id))
        return events

    def close(self) -> list[SSEEvent]:
        """End of input: flush the decoder, the last line and a pending event with data."""
        events = self._feed_text(self._decoder.decode(b"", True))
        if self._partial:
            line = "".join(self._partial)
            self._partial.clear()
            self._partial_size = 0
            self._line(line, events)
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not text:
            return events
        if not self._bom_done:
            self._bom_done = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._pending_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        tail = lines.pop()
        if lines:
            if self._partial:
                self._partial.append(lines[0])
                lines[0] = "".join(self._partial)
                self._partial.clear()
                self._partial_size = 0
            for line in lines:
                self._line(line, events)
        if tail:
            self._partial.append(tail)
            self._partial_size += len(tail)
            if self._partial_size + self._data_size > self._max:
                self._too_big()
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            self.comments += 1
            return
        colon = line.find(":")
        if colon < 0:
            name, value = line, ""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == " " else line[colon + 1 :]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                self._too_big()
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            events.append(SSEEvent(data, self._event or "message", self._last_id, self._retry))
        self._data = []
        self._data_size = 0
        self._event = None
        self._retry = None

    def _too_big(self) -> None:
        size = self._data_size + self._partial_size
        self._data = []
        self._partial.clear()
        self._data_size = self._partial_size = 0
        raise ProtocolError(
            f"a server-sent event exceeded the limit of {self._max} characters "
            f"({size} received before giving up); raise max_event_size if this is expected"
        )


async def aiter_sse(
    chunks: AsyncIterable[bytes], *, max_event_size: int = _DEFAULT_MAX
) -> AsyncIterator[SSEEvent]:
    """The events of a byte stream, decoded as they complete."""
    decoder = SSEDecoder(max_event_size)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event
