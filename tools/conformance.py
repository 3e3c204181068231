"""Run agentloop's response parsing over the whole shared corpus of recorded traffic.

Usage: python tools/conformance.py [PATH]   (default: ../shared/realtraffic next to the repo)

Each recording is read as the client would read it: an error status through `status_error`, a
JSON body through `parse_completion`, a stream through `SSEDecoder` + `StreamAccumulator`. The
outcome the recording calls for is derived from the recording itself, independently of the
parser: an error status, a top-level ``error`` or an ``event: error`` means a typed API error; a
body without ``choices`` a `ProtocolError`; a stream with neither a finish_reason nor ``[DONE]``
an `IncompleteStreamError`. Prints a table by provider host and by feature tag, and exits 1 when
any recording gives an unexpected result.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from agentloop._errors import APIStatusError, IncompleteStreamError, ProtocolError
from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.response import parse_completion
from agentloop._wire.sse import SSEDecoder, SSEEvent
from agentloop._wire.status import status_error

OK, BY_DESIGN, UNEXPECTED = "ok", "error by design", "UNEXPECTED"


def _chunks(response: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for data in response.get("sse_events") or []:
        try:
            found.append(json.loads(data))
        except ValueError:
            found.append(data)
    return found


def expected_error(response: dict[str, Any]) -> type[Exception] | None:
    """The error class a recording calls for, read from the recording alone."""
    if response["status"] >= 400:
        return APIStatusError
    if "body" in response or "raw_body" in response:
        body = response.get("body")
        if body is None:
            body = json.loads(response["raw_body"])
        if isinstance(body, dict) and body.get("error") is not None:
            return APIStatusError
        return None if isinstance(body, dict) and body.get("choices") else ProtocolError
    chunks = _chunks(response)
    if "error" in (response.get("sse_event_names") or []):
        return APIStatusError
    if any(isinstance(c, dict) and c.get("error") is not None for c in chunks):
        return APIStatusError
    finished = any(
        isinstance(c, dict) and any(ch.get("finish_reason") for ch in c.get("choices") or [])
        for c in chunks
    )
    done = any(isinstance(c, str) and c.strip() == "[DONE]" for c in chunks)
    return None if finished or done else IncompleteStreamError


def parse(response: dict[str, Any]) -> object:
    """Read a recorded response as the client would."""
    status = response["status"]
    if "body" in response or "raw_body" in response:
        body = response.get("body")
        if body is None:
            body = json.loads(response["raw_body"])
        if status >= 400:
            raise status_error(status, body, response.get("headers") or {})
        return parse_completion(body)
    accumulator = StreamAccumulator()
    if response.get("raw_sse") is not None:
        decoder = SSEDecoder()
        events = decoder.feed(response["raw_sse"].encode()) + decoder.close()
    else:
        events = [SSEEvent(data) for data in response["sse_events"]]
    for event in events:
        accumulator.feed_event(event)
    return accumulator.response()


def classify(record: dict[str, Any]) -> tuple[str, str]:
    response = record["response"]
    expected = expected_error(response)
    try:
        parse(response)
    except Exception as exc:
        if expected is not None and isinstance(exc, expected):
            return BY_DESIGN, type(exc).__name__
        return UNEXPECTED, f"{type(exc).__name__}: {exc}"[:300]
    if expected is not None:
        return UNEXPECTED, f"parsed, but the recording calls for {expected.__name__}"
    return OK, ""


def _table(title: str, rows: dict[str, Counter[str]]) -> None:
    print(f"\n{title:<52} {OK:>6} {'by design':>10} {'unexpected':>11}")
    for key in sorted(rows, key=lambda k: (-sum(rows[k].values()), k)):
        c = rows[key]
        print(f"{key[:52]:<52} {c[OK]:>6} {c[BY_DESIGN]:>10} {c[UNEXPECTED]:>11}")


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parents[2] / "shared" / "realtraffic"
    root = Path(argv[1]) if len(argv) > 1 else default
    by_host: dict[str, Counter[str]] = defaultdict(Counter)
    by_feature: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    problems: list[str] = []
    designed: Counter[str] = Counter()
    for path in sorted(root.glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        outcome, detail = classify(record)
        totals[outcome] += 1
        by_host[str(record.get("host") or record.get("provider") or "?")][outcome] += 1
        for tag in record.get("features") or ["(none)"]:
            by_feature[tag][outcome] += 1
        if outcome == UNEXPECTED:
            problems.append(f"{path.relative_to(root)}: {detail}")
        elif outcome == BY_DESIGN:
            designed[detail] += 1
    _table("provider host", by_host)
    _table("feature", by_feature)
    print(
        f"\n{sum(totals.values())} recordings: {totals[OK]} parsed, "
        f"{totals[BY_DESIGN]} typed errors by design "
        f"({', '.join(f'{n} {k}' for k, n in designed.most_common())}), "
        f"{totals[UNEXPECTED]} unexpected"
    )
    for line in problems:
        print("UNEXPECTED", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
