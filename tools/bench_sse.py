"""Time the SSE decoder and the stream accumulator against a naive baseline.

Usage: python tools/bench_sse.py [EVENTS]   (default 500)

The stream is EVENTS chat-completion chunks of a few words each, as OpenAI sends them, in
1-byte, 7-byte and 4 KiB pieces. "baseline" is the least a client can do: join the pieces,
split on blank lines and `json.loads` each event. "decoder" is `SSEDecoder` alone,
"decoder+acc" the whole path (`SSEDecoder` + `StreamAccumulator` + `response()`).
"""

from __future__ import annotations

import json
import sys
import timeit

from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.sse import SSEDecoder


def make_stream(events: int) -> bytes:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    out = []
    for n in range(events):
        delta = {"content": f" word{n} and more"}
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        out.append(f"data: {json.dumps(chunk)}\n\n")
    last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    out.append(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n")
    return "".join(out).encode()


def baseline(pieces: list[bytes]) -> int:
    buffer = b""
    count = 0
    for piece in pieces:
        buffer += piece
        *complete, buffer = buffer.split(b"\n\n")
        for event in complete:
            data = event[6:]
            if data != b"[DONE]":
                json.loads(data)
                count += 1
    return count


def decoder_only(pieces: list[bytes]) -> int:
    decoder = SSEDecoder()
    count = 0
    for piece in pieces:
        count += len(decoder.feed(piece))
    return count + len(decoder.close())


def full(pieces: list[bytes]) -> int:
    decoder, accumulator = SSEDecoder(), StreamAccumulator()
    for piece in pieces:
        for event in decoder.feed(piece):
            accumulator.feed_event(event)
    for event in decoder.close():
        accumulator.feed_event(event)
    return len(accumulator.response().message.content or "")


def main(argv: list[str]) -> int:
    events = int(argv[1]) if len(argv) > 1 else 500
    data = make_stream(events)
    print(f"{events} events, {len(data)} bytes; best of 5, milliseconds per stream")
    print(f"{'piece':>8} {'baseline':>10} {'decoder':>10} {'decoder+acc':>12}")
    for size in (1, 7, 4096):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        row = []
        for fn in (baseline, decoder_only, full):
            runs = 3 if size == 1 else 20
            best = (
                min(timeit.repeat(lambda fn=fn, pieces=pieces: fn(pieces), number=runs, repeat=5))
                / runs
            )
            row.append(best * 1000)
        print(f"{size:>8} {row[0]:>10.2f} {row[1]:>10.2f} {row[2]:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
