"""The server-sent-events decoder against the WHATWG rules, chunked in every way."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.fuzzing import MANY, SOME, outcome, typed

from agentloop._errors import ProtocolError
from agentloop._wire.sse import SSEDecoder, SSEEvent, aiter_sse

sse_text = st.lists(
    st.sampled_from(["data: ", "data:", "data", "event: ", "id: ", "retry: ", ": ", "\n", "\r",
                     "\r\n", "\ufeff", "[DONE]", "{", "}", "x", "é", "\x00"])
    | st.text(max_size=10),
    max_size=40,
).map("".join)  # fmt: skip


def decode_cut(data: bytes, cuts: list[int], max_size: int = 1 << 20) -> list[SSEEvent]:
    decoder = SSEDecoder(max_event_size=max_size)
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.close()


@MANY
@given(st.binary(max_size=300) | sse_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
       st.lists(st.integers(0, 300), max_size=20))  # fmt: skip
@example(b"\xef\xbb", [1])
@example(b"data: a\r", [8])
def test_sse_decoder_any_bytes_any_split_same_events(data, cuts):
    whole = decode_cut(data, [])
    assert decode_cut(data, cuts) == whole
    assert all(isinstance(event.data, str) for event in whole)


@SOME
@given(sse_text.map(str.encode), st.integers(1, 40), st.lists(st.integers(0, 200), max_size=8))
def test_sse_decoder_size_limit_is_a_protocol_error(data, limit, cuts):
    events, exc = outcome(decode_cut, data, cuts, limit)
    if exc is not None:
        assert typed(exc), repr(exc)
        assert "exceeded the limit" in str(exc)
    else:
        assert all(len(event.data) <= limit for event in events)


@SOME
@given(st.binary(max_size=200))
def test_sse_decoder_byte_by_byte_equals_whole(data):
    assert decode_cut(data, list(range(len(data)))) == decode_cut(data, [])


def decode(*chunks: bytes, max_event_size: int = 1 << 20) -> list[SSEEvent]:
    decoder = SSEDecoder(max_event_size)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def every_split(data: bytes) -> list[list[bytes]]:
    """The stream whole, cut in two at every position, and one byte at a time."""
    splits = [[data], [data[i : i + 1] for i in range(len(data))]]
    splits += [[data[:i], data[i:]] for i in range(1, len(data))]
    return splits


SAMPLE = (
    b"\xef\xbb\xbf: hello\r\n"
    b"data: one\r\n\r\n"
    b"event: update\rdata: two\rdata:  three\r\r"
    b": OPENROUTER PROCESSING\n\n"
    b'id: 7\nretry: 1500\ndata: {"x": "caf\xc3\xa9 \xf0\x9f\x8e\x89"}\n\n'
    b"data\n\n"
    b"event: lonely\n\n"
    b"data: [DONE]\n\n"
)


SAMPLE_EVENTS = [
    SSEEvent("one"),
    SSEEvent("two\n three", event="update"),
    SSEEvent('{"x": "café 🎉"}', id="7", retry=1500),
    SSEEvent("", id="7"),
    SSEEvent("[DONE]", id="7"),
]


@pytest.mark.parametrize("chunks", every_split(SAMPLE), ids=lambda c: f"{len(c)}pieces")
def test_sample_stream_decodes_the_same_however_it_is_split(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()
    assert events == SAMPLE_EVENTS
    assert decoder.comments == 2


def test_bom_is_stripped_once_only_at_the_start() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent("a")]
    # a second BOM is part of the line: the field name is then unknown and ignored
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SSEEvent("a")]
    assert decode(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == [SSEEvent("a")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # if the split CRLF counted as two line ends, "a" would be dispatched alone
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEEvent("a\nb")]
    assert decode(b"data: a\r", b"\r", b"\n") == [SSEEvent("a")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data:a\n\n", [SSEEvent("a")]),
        (b"data:  a\n\n", [SSEEvent(" a")]),
        (b"data: a\ndata: b\ndata:\n\n", [SSEEvent("a\nb\n")]),
        (b"data\n\n", [SSEEvent("")]),
        (b"data:\n\n", [SSEEvent("")]),
        (b"event: x\n\ndata: y\n\n", [SSEEvent("y")]),
        (b"id: 1\n\nid: 2\0x\ndata: y\n\n", [SSEEvent("y", id="1")]),
        (b"id\ndata: y\n\n", [SSEEvent("y", id="")]),
        (b"retry: 12a\ndata: y\n\n", [SSEEvent("y")]),
        (b"retry: 30\ndata: y\n\ndata: z\n\n", [SSEEvent("y", retry=30), SSEEvent("z")]),
        (b"foo: bar\ndata: y\nDATA: no\n\n", [SSEEvent("y")]),
        (b": only a comment\n\n", []),
        (b"data: a\xffb\n\n", [SSEEvent("a\ufffdb")]),
        (b"data: x:y: z\n\n", [SSEEvent("x:y: z")]),
    ],
)
def test_field_rules(raw: bytes, expected: list[SSEEvent]) -> None:
    assert decode(raw) == expected


def test_comments_are_counted_and_never_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": a\n:b\n\n: c\n") == []
    assert decoder.comments == 3


def test_end_of_input_keeps_a_complete_data_line_without_its_blank_line() -> None:
    assert decode(b"data: {}\n\ndata: [DONE]") == [SSEEvent("{}"), SSEEvent("[DONE]")]
    assert decode(b"data: [DONE]\n") == [SSEEvent("[DONE]")]
    assert decode(b"data: [DONE]\r") == [SSEEvent("[DONE]")]
    assert decode(b"event: only\n") == []


def test_events_come_out_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [SSEEvent("a")]
    assert decoder.close() == [SSEEvent("b")]


@pytest.mark.parametrize("piece", [1, 3, 1000])
def test_an_event_beyond_the_limit_raises_protocol_error(piece: int) -> None:
    data = b"data: " + b"x" * 200 + b"\n\n"
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    with pytest.raises(ProtocolError, match="exceeded the limit of 100 characters"):
        decode(*chunks, max_event_size=100)


def test_the_limit_counts_all_data_lines_of_one_event_not_the_stream() -> None:
    many_lines = b"data: 0123456789\n" * 20 + b"\n"
    with pytest.raises(ProtocolError):
        decode(many_lines, max_event_size=100)
    many_events = b"data: 0123456789\n\n" * 50
    assert len(decode(many_events, max_event_size=100)) == 50


def test_a_line_without_end_beyond_the_limit_raises_even_without_newline() -> None:
    decoder = SSEDecoder(max_event_size=50)
    decoder.feed(b"data: " + b"y" * 30)
    with pytest.raises(ProtocolError):
        decoder.feed(b"y" * 30)


def test_multibyte_characters_split_at_every_byte() -> None:
    text = "data: héllo — 🎉 日本\n\n"
    raw = text.encode()
    for chunks in every_split(raw):
        assert decode(*chunks) == [SSEEvent("héllo — 🎉 日本")]


@pytest.mark.anyio
async def test_aiter_sse_yields_events_from_an_async_byte_stream() -> None:
    async def source() -> AsyncIterator[bytes]:
        for chunk in (b"data: a\r", b"\n\r\nevent: e\ndata: b\n", b"\n: c\ndata: [DONE]"):
            yield chunk

    events = [e async for e in aiter_sse(source())]
    assert events == [SSEEvent("a"), SSEEvent("b", event="e"), SSEEvent("[DONE]")]


@pytest.mark.anyio
async def test_aiter_sse_applies_the_size_limit() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: " + b"z" * 64 + b"\n\n"

    with pytest.raises(ProtocolError):
        async for _ in aiter_sse(source(), max_event_size=32):
            pass


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=8))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder(max_event_size=64)
    try:
        for chunk in chunked(data, cuts):
            for event in decoder.feed(chunk):
                assert isinstance(event.data, str)
        decoder.close()
    except ProtocolError:
        pass


LINE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)


EVENTS = st.lists(
    st.builds(
        SSEEvent,
        data=st.lists(LINE_TEXT, min_size=1, max_size=3).map("\n".join),
        event=LINE_TEXT.filter(bool),
        id=st.none(),
        retry=st.one_of(st.none(), st.integers(0, 10**6)),
    ),
    max_size=6,
)


def encode(events: list[SSEEvent], ends: list[str]) -> bytes:
    out: list[str] = []
    for n, event in enumerate(events):
        end = ends[n % len(ends)]
        if n % 2:
            out.append(f": comment {n}{end}")
        out.append(f"event: {event.event}{end}")
        if event.retry is not None:
            out.append(f"retry: {event.retry}{end}")
        out += [f"data: {line}{end}" for line in event.data.split("\n")]
        out.append(end)
    return "".join(out).encode()


@settings(max_examples=300, deadline=None)
@given(
    EVENTS,
    st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=4),
    st.lists(st.integers(0, 2000), max_size=12),
    st.booleans(),
)
def test_round_trip_with_random_line_ends_and_chunking(
    events: list[SSEEvent], ends: list[str], cuts: list[int], bom: bool
) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + encode(events, ends)
    assert decode(*chunked(data, cuts)) == events


LINE = st.sampled_from(
    ["data: {}", "data: x", "data:y", "event: e", "id: 9", "retry: 5", ": c", ""]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.lists(LINE, min_size=1, max_size=4), st.booleans()), max_size=8))
def test_whole_events_per_chunk_decode_as_byte_by_byte(
    blocks: list[tuple[list[str], bool]],
) -> None:
    # A chunk of whole "data: " events takes a fast path; fields set by an earlier chunk
    # (event, id, retry, a data line without its blank line) must still apply to it.
    chunks = ["".join(line + "\n" for line in lines) + "\n" * end for lines, end in blocks]
    whole = decode(*(chunk.encode() for chunk in chunks))
    data = "".join(chunks).encode()
    assert whole == decode(*(data[i : i + 1] for i in range(len(data))))
