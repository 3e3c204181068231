"""Real recorded exchanges (tests/fixtures/recordings, picked by tools/select_fixtures.py) go
through the real parsers; the expected values are read from the recordings with plain Python,
never by calling the code under test."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from agentloop._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
)
from agentloop._events import TextDelta, ToolArgumentsDelta, ToolCallStarted
from agentloop._messages import ModelResponse
from agentloop._wire.chunks import StreamAccumulator
from agentloop._wire.response import parse_completion
from agentloop._wire.sse import SSEDecoder, SSEEvent
from agentloop._wire.status import status_error

FIXTURES = Path(__file__).parents[1] / "fixtures" / "recordings"
RECORDINGS = sorted(FIXTURES.glob("*.json"))
BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    500: InternalServerError,
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def is_stream(record: dict[str, Any]) -> bool:
    return "sse_events" in record["response"]


def body_of(response: dict[str, Any]) -> Any:
    return response["body"] if "body" in response else json.loads(response["raw_body"])


def expected_class(status: int, error: Any) -> type[APIStatusError]:
    if isinstance(error, dict) and "insufficient_quota" in (error.get("code"), error.get("type")):
        return InsufficientCreditsError
    return BY_STATUS[status]


def status_of_error(error: dict[str, Any]) -> int:
    for key in ("code", "status_code"):
        if isinstance(error.get(key), int):
            return error[key]
    return 500


def without_think(text: str | None) -> str | None:
    if not text:
        return None
    stripped = text.lstrip()
    if not stripped.startswith("<think>"):
        return text
    if "</think>" not in stripped:
        return None
    return stripped.split("</think>", 1)[1].lstrip() or None


def text_of(content: Any) -> str | None:
    if isinstance(content, list):
        return "".join(p["text"] for p in content if p.get("type") == "text")
    return content


# ---- expectations read from the recordings ----------------------------------------------


def expect_body(body: dict[str, Any]) -> dict[str, Any]:
    choice = next((c for c in body["choices"] if c.get("index") == 0), body["choices"][0])
    message = choice["message"]
    calls = message.get("tool_calls") or []
    usage = body.get("usage") or {}
    return {
        "content": without_think(text_of(message.get("content"))),
        "names": [c["function"]["name"] for c in calls],
        "arguments": [c["function"].get("arguments") or "{}" for c in calls],
        "ids": [c.get("id") or None for c in calls],
        "finish": choice.get("finish_reason") or None,
        "input": usage.get("prompt_tokens") or 0,
        "output": usage.get("completion_tokens") or 0,
        "cost": usage.get("cost"),
        "refusal": message.get("refusal") or None,
        "model": body.get("model") or None,
    }


def expect_stream(events: list[str]) -> dict[str, Any]:
    chunks = [json.loads(e) for e in events if e.strip() != "[DONE]"]
    text, refusal, finish, usage = [], [], None, None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        elif (chunk.get("x_groq") or {}).get("usage") and usage is None:
            usage = chunk["x_groq"]["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {}
            text.append(text_of(delta.get("content")) or "")
            refusal.append(delta.get("refusal") or "")
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": None, "args": ""})
                function = call.get("function") or {}
                entry["name"] = entry["name"] or function.get("name")
                entry["args"] += function.get("arguments") or ""
    ordered = [calls[k] for k in calls]
    usage = usage or {}
    return {
        "content": without_think("".join(text)),
        "raw_text": "".join(text),
        "names": [c["name"] for c in ordered],
        "arguments": [c["args"] or "{}" for c in ordered],
        "finish": finish,
        "input": usage.get("prompt_tokens") or 0,
        "output": usage.get("completion_tokens") or 0,
        "cost": usage.get("cost"),
        "refusal": "".join(refusal) or None,
        "model": next((c["model"] for c in chunks if c.get("model")), None),
    }


def check(response: ModelResponse, expected: dict[str, Any]) -> None:
    assert response.message.content == expected["content"]
    assert [c.name for c in response.message.tool_calls] == expected["names"]
    assert [c.arguments for c in response.message.tool_calls] == expected["arguments"]
    assert response.raw_finish_reason == expected["finish"]
    assert response.usage.input_tokens == expected["input"]
    assert response.usage.output_tokens == expected["output"]
    assert response.usage.cost == expected["cost"]
    assert response.message.refusal == expected["refusal"]
    assert response.model == expected["model"]
    ids = [c.id for c in response.message.tool_calls]
    assert len(set(ids)) == len(ids)
    assert all(ids)


# ---- the stream, as bytes ----------------------------------------------------------------


def raw_stream(response: dict[str, Any], rng: random.Random) -> bytes:
    if response.get("raw_sse"):
        return response["raw_sse"].encode()
    ends = ["\n", "\r\n", "\r"]  # an event ends with two line ends of one kind ("\r\n" is one)
    return "".join(f"data: {e}{rng.choice(ends) * 2}" for e in response["sse_events"]).encode()


def pieces(data: bytes, rng: random.Random, largest: int) -> list[bytes]:
    out, start = [], 0
    while start < len(data):
        size = rng.randint(1, largest)
        out.append(data[start : start + size])
        start += size
    return out


def run_stream(chunks: list[bytes]) -> tuple[ModelResponse, list[Any]]:
    decoder, accumulator, deltas = SSEDecoder(), StreamAccumulator(), []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            deltas += accumulator.feed_event(event)
    for event in decoder.close():
        deltas += accumulator.feed_event(event)
    return accumulator.response(), deltas


def stream_error(events: list[str], names: list[Any]) -> dict[str, Any] | None:
    for data, name in zip(events, names or [None] * len(events), strict=True):
        if data.strip() == "[DONE]":
            continue
        chunk = json.loads(data)
        if name == "error" or chunk.get("error"):
            return chunk["error"]
    return None


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem[:90])
def test_recording(path: Path) -> None:
    record = load(path)
    response = record["response"]
    rng = random.Random(path.name)
    if not is_stream(record):
        body = body_of(response)
        if response["status"] >= 400 or body.get("error"):
            error = body["error"]
            status = response["status"] if response["status"] >= 400 else status_of_error(error)
            with pytest.raises(APIStatusError) as caught:
                parse_completion(body)
            assert caught.value.body == body
            if isinstance(error.get("code"), int):
                assert caught.value.status_code == error["code"]
            typed = status_error(status, body)
            assert isinstance(typed, expected_class(status, error))
            return
        if not isinstance(body.get("choices"), list):
            with pytest.raises(ProtocolError, match="no choices"):
                parse_completion(body)
            return
        check(parse_completion(body), expect_body(body))
        return
    events = response["sse_events"]
    data = raw_stream(response, rng)
    error = stream_error(events, response.get("sse_event_names"))
    splits = [[data], pieces(data, rng, 7), pieces(data, rng, 300)]
    if error is not None:
        for chunks in splits:
            with pytest.raises(APIStatusError) as caught:
                run_stream(chunks)
            assert isinstance(caught.value, BY_STATUS[status_of_error(error)])
            assert str(error["message"]) in caught.value.message
        return
    expected = expect_stream(events)
    for chunks in splits:
        result, deltas = run_stream(chunks)
        check(result, expected)
        text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
        if expected["content"] == expected["raw_text"]:
            assert text == expected["raw_text"]
        else:  # a <think> block went to reasoning: the text deltas are the answer only
            assert text.strip() == (expected["content"] or "").strip()
        started = [d for d in deltas if isinstance(d, ToolCallStarted)]
        assert [d.name for d in started] == expected["names"]
        assert [d.index for d in started] == list(range(len(started)))
        for call in started:
            args = "".join(
                d.text
                for d in deltas
                if isinstance(d, ToolArgumentsDelta) and d.index == call.index
            )
            assert (args or "{}") == expected["arguments"][call.index]


def test_fixtures_cover_streams_errors_and_providers() -> None:
    records = [load(p) for p in RECORDINGS]
    assert 60 <= len(records) <= 140
    assert sum(is_stream(r) for r in records) >= 20
    hosts = {r.get("host") for r in records if r.get("host")}
    assert len(hosts) >= 20
    tags = {t for r in records for t in r.get("features") or []}
    for tag in ("tool_call_args_split", "error_in_stream", "refusal", "reasoning", "sse_comments"):
        assert tag in tags


def test_raw_sse_events_match_the_recorded_event_list() -> None:
    """The decoder finds exactly the events the recorder listed, with the comments counted."""
    checked = 0
    for path in RECORDINGS:
        response = load(path)["response"]
        if not response.get("raw_sse"):
            continue
        decoder = SSEDecoder()
        events: list[SSEEvent] = decoder.feed(response["raw_sse"].encode()) + decoder.close()
        assert [e.data for e in events] == response["sse_events"]
        assert decoder.comments == len(response.get("sse_comments") or [])
        checked += 1
    assert checked >= 15
