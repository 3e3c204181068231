"""Whole agent runs through every transport fault of the fault server, streamed and not.

Each run calls a tool in its first turn (a clean answer), then meets the fault in its second
request. The outcome is checked exactly: retried and finished (with the retries counted and the
server's wait honoured), or failed fast with the right typed error carrying the transcript (user,
assistant, tool) and the usage of the first turn. Every run is bounded in time, and afterwards the
model's client is closed and the server sees every connection closed.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import pytest

from agentloop import (
    Agent,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IncompleteStreamError,
    InsufficientCreditsError,
    InternalServerError,
    ModelSettings,
    ModerationError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    tool,
)
from reliability.helpers import KEY, FaultServer, Sleeps, make_model

from faultserver import (  # isort: skip
    Plan, chunks_of, error, html_error, ok, refused_url, stream, tool_call,
)  # fmt: skip

pytestmark = pytest.mark.anyio
MODES = ["run", "stream"]
ADDED: list[tuple[int, int]] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    ADDED.append((a, b))
    return a + b


def first_turn(streaming: bool) -> Plan:
    call = tool_call("add", {"a": 2, "b": 3}, "call_add")
    return stream(None, [call]) if streaming else ok(None, [call])


def final(streaming: bool, text: str = "done") -> Plan:
    return stream(text) if streaming else ok(text)


async def run(model, mode: str, *, deadline: float | None = None, **agent_options):
    settings = ModelSettings(timeout=deadline) if deadline is not None else None
    agent = Agent(model, tools=[add], settings=settings, **agent_options)
    if mode == "run":
        return await agent.run("add 2 and 3")
    async with agent.run_stream("add 2 and 3") as events:
        async for _ in events:
            pass
    return events.result


async def expect_success(server, sleeps, mode, faults, *, retries, bound=3.0, **options):
    streaming = mode == "stream"
    server.script(first_turn(streaming), *faults, final(streaming))
    model = make_model(server, sleeps, **options)
    started = time.monotonic()
    try:
        result = await run(model, mode)
    finally:
        await model.aclose()
    assert time.monotonic() - started < bound
    assert result.output == "done"
    assert result.usage.requests == 2
    assert result.usage.retries == retries
    assert len(sleeps.calls) == retries
    assert server.pending == 0
    assert server.wait_closed(3)
    return result


async def expect_failure(server, sleeps, mode, faults, cls, *, attempts, bound=3.0, **options):
    streaming = mode == "stream"
    before = len(server.requests)
    server.script(first_turn(streaming), *faults)
    model = make_model(server, sleeps, **options)
    started = time.monotonic()
    try:
        with pytest.raises(cls) as info:
            await run(model, mode, deadline=options.get("timeout"))
    finally:
        await model.aclose()
    assert time.monotonic() - started < bound
    error = info.value
    assert [m.role for m in error.messages] == ["user", "assistant", "tool"]
    assert error.usage is not None
    assert (error.usage.requests, error.usage.tool_calls) == (1, 1)
    assert error.usage.input_tokens == 10
    assert len(server.requests) - before == 1 + attempts
    assert len(sleeps.calls) == attempts - 1
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert server.wait_closed(3)
    return error


RETRYABLE = [408, 409, 429, 500, 502, 503, 504]
WAITS = {
    "none": ({}, None),
    "retry-after-ms": ({"retry-after-ms": "20"}, 0.02),
    "retry-after-seconds": ({"retry-after": "1"}, 1.0),
    "retry-after-date": ({"retry-after": "DATE"}, 2.5),
    "retry-after-zero": ({"retry-after": "0"}, None),
    "retry-after-negative": ({"retry-after": "-30"}, None),
    "retry-after-garbage": ({"retry-after": "soon"}, None),
    "retry-after-nan": ({"retry-after-ms": "nan"}, None),
}


def _headers(form: str) -> dict[str, str]:
    headers = dict(WAITS[form][0])
    if headers.get("retry-after") == "DATE":
        headers["retry-after"] = formatdate(time.time() + 3, usegmt=True)
    return headers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", sorted(WAITS))
@pytest.mark.parametrize("status", RETRYABLE)
async def test_retryable_status_is_retried_with_the_asked_wait(server, sleeps, mode, status, form):
    fault = error(status, headers=_headers(form))
    await expect_success(server, sleeps, mode, [fault, fault], retries=2)
    wanted = WAITS[form][1]
    for waited in sleeps.calls:
        if wanted is None:  # the backoff: 0.5 then 1.0 s, less up to 25 % jitter
            assert 0.3 <= waited <= 1.0
        elif form == "retry-after-date":
            assert 1.0 < waited <= 3.0
        else:
            assert waited == pytest.approx(wanted)


ABSURD = {
    "retry-after-hours": {"retry-after": "86400"},
    "retry-after-ms-huge": {"retry-after-ms": "1e15"},
    "retry-after-far-date": {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"},
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", sorted(ABSURD))
@pytest.mark.parametrize(("status", "cls"), [(429, RateLimitError), (503, InternalServerError)])
async def test_an_absurd_wait_is_final_at_once(server, sleeps, mode, form, status, cls):
    fault = error(status, "slow down", headers=ABSURD[form])
    failure = await expect_failure(server, sleeps, mode, [fault], cls, attempts=1)
    assert failure.retry_after is not None
    assert failure.retry_after > 60
    assert "not retried" in failure.message


FINAL = [
    (error(400, "bad", kind="invalid_request_error"), BadRequestError),
    (error(401, "Incorrect API key", code="invalid_api_key"), AuthenticationError),
    (error(402, "Insufficient credits", code=402), InsufficientCreditsError),
    (error(403, "not allowed"), PermissionDeniedError),
    (error(404, "no such model", code="model_not_found"), NotFoundError),
    (error(422, "unprocessable"), BadRequestError),
    (error(429, "quota", code="insufficient_quota"), InsufficientCreditsError),
    (error(429, "quota", kind="insufficient_quota", headers={"retry-after": "1"}),
     InsufficientCreditsError),
    (error(402, "credits", code=402, headers={"x-should-retry": "true"}), InsufficientCreditsError),
    (error(403, "Input flagged", code=403,
           metadata={"reasons": ["violence"], "flagged_input": "x"}), ModerationError),
    (error(403, "Your request was flagged by our moderation system"), ModerationError),
    (error(503, "down", headers={"x-should-retry": "false"}), InternalServerError),
    (error(409, "conflict", headers={"x-should-retry": "false"}), ConflictError),
    (html_error(404), NotFoundError),
    (error(400, "retry me", headers={"retry-after": "1"}), BadRequestError),
]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "cls"), FINAL, ids=[f"{p.status}-{c.__name__}" for p, c in FINAL]
)
async def test_final_errors_fail_fast_with_their_type(server, sleeps, mode, fault, cls):
    failure = await expect_failure(server, sleeps, mode, [fault], cls, attempts=1)
    assert type(failure) is cls
    assert failure.status_code == fault.status
    assert "<" not in failure.message


@pytest.mark.parametrize("mode", MODES)
async def test_should_retry_true_retries_a_400(server, sleeps, mode):
    fault = error(400, "transient", headers={"x-should-retry": "true"})
    await expect_success(server, sleeps, mode, [fault], retries=1)


@pytest.mark.parametrize("mode", MODES)
async def test_html_error_page_is_retried_and_read_as_text(server, sleeps, mode):
    await expect_success(server, sleeps, mode, [html_error(502)], retries=1)
    failure = await expect_failure(
        server, Sleeps(), mode, [html_error(502)] * 3, InternalServerError, attempts=3
    )
    assert "502 Bad Gateway" in failure.message
    assert "<h1>" not in failure.message


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_connection_dropped_before_the_answer_is_retried(server, sleeps, mode, how):
    drop = Plan(no_response=True, abort=how)
    await expect_success(server, sleeps, mode, [drop, drop], retries=2)


@pytest.mark.parametrize("mode", MODES)
async def test_connection_dropped_every_time_is_a_connection_error(server, sleeps, mode):
    drops = [Plan(no_response=True, abort="reset")] * 3
    failure = await expect_failure(server, sleeps, mode, drops, APIConnectionError, attempts=3)
    assert not isinstance(failure, APIStatusError)
    assert failure.__cause__ is not None


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(mode):
    sleeps = Sleeps()
    from agentloop import OpenAICompatible
    from agentloop._wire.retry import RetryPolicy

    policy = RetryPolicy(max_retries=2, sleep=sleeps)
    model = OpenAICompatible("m", base_url=refused_url(), api_key=KEY, retry=policy, timeout=2)
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as info:
        await run(model, mode)
    await model.aclose()
    assert time.monotonic() - started < 3
    assert len(sleeps.calls) == 2
    assert [m.role for m in info.value.messages] == ["user"]
    assert info.value.usage is not None
    assert info.value.usage.requests == 0
    assert KEY not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
async def test_headers_that_never_come_time_out_and_retry(server, sleeps, mode):
    late = Plan(header_delay=30)
    streaming = mode == "stream"
    server.script(first_turn(streaming), late, final(streaming))
    model = make_model(server, sleeps, timeout=0.4)
    started = time.monotonic()
    result = await run(model, mode)
    await model.aclose()
    assert time.monotonic() - started < 2.5
    assert result.output == "done"
    assert result.usage.retries == 1
    assert server.wait_closed(3)


@pytest.mark.parametrize("mode", MODES)
async def test_headers_that_never_come_every_time(server, sleeps, mode):
    late = [Plan(header_delay=30)] * 2
    failure = await expect_failure(
        server, sleeps, mode, late, APITimeoutError, attempts=2, retries=1, timeout=0.3
    )
    assert "deadline" in failure.message
    if mode == "run":
        assert "no answer from 127.0.0.1 within the 0.3 s deadline" in failure.message


async def test_json_body_that_stops_halfway_is_retried(server, sleeps):
    cut = Plan(200, {"Content-Type": "application/json"}, [b'{"id": "x", "cho'],
               content_length=300, abort_after=1)  # fmt: skip
    await expect_success(server, sleeps, "run", [cut], retries=1)


async def test_json_body_that_stalls_hits_the_deadline(server, sleeps):
    stall = Plan(200, {"Content-Type": "application/json"}, [b'{"id": "x", ', b"}"],
                 chunk_delay=30)  # fmt: skip
    failure = await expect_failure(
        server, sleeps, "run", [stall], APITimeoutError, attempts=1, retries=0, timeout=0.4
    )
    assert "(200) did not arrive in full before the deadline" in failure.message


@pytest.mark.parametrize("abort", ["close", "reset"])
async def test_stream_that_stops_halfway_is_final(server, sleeps, abort):
    cut = stream("a long answer cut short", abort_after=3, abort=abort)
    # the chunked body never ended: a broken transfer, whether closed or reset; never retried
    failure = await expect_failure(server, sleeps, "stream", [cut], APIConnectionError, attempts=1)
    assert "the stream broke" in failure.message
    assert failure.__cause__ is not None


async def test_keepalive_comments_forever_hit_the_overall_deadline(server, sleeps):
    forever = stream(events=[], done=False, forever=b": OPENROUTER PROCESSING\n\n",
                     chunk_delay=0.02)  # fmt: skip
    failure = await expect_failure(
        server, sleeps, "stream", [forever], APITimeoutError, attempts=1, timeout=0.5
    )
    assert "deadline" in failure.message


async def test_stream_that_stalls_halfway_hits_the_deadline(server, sleeps):
    # run_stream holds one deadline scope around the whole read (not one per chunk): a stall
    # after some text still ends at the deadline, as a typed error with the transcript.
    stall = stream("a long answer that stalls", chunk_delay=30)
    failure = await expect_failure(
        server, sleeps, "stream", [stall], APITimeoutError, attempts=1, timeout=0.4
    )
    assert "did not end within its 0.4 s deadline" in failure.message


async def test_a_stream_read_directly_stalls_into_the_deadline(server, sleeps):
    # model.stream() iterated by a caller: each read has its own scope at the same deadline.
    from agentloop._messages import ModelRequest, UserMessage

    server.script(stream("a long answer that stalls", chunk_delay=30))
    model = make_model(server, sleeps, timeout=0.4)
    started = time.monotonic()

    async def read_all() -> None:
        async with model.stream(ModelRequest((UserMessage("hi"),))) as deltas:
            async for _ in deltas:
                pass

    try:
        with pytest.raises(APITimeoutError, match=r"0\.4 s deadline"):
            await read_all()
    finally:
        await model.aclose()
    assert 0.4 <= time.monotonic() - started < 2.5
    assert server.wait_closed(3)


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_json_is_a_protocol_error(server, sleeps, mode):
    if mode == "stream":
        bad = stream(events=["{not json"])
    else:
        bad = Plan(200, {"Content-Type": "application/json"}, [b"{not json"])
    failure = await expect_failure(server, sleeps, mode, [bad], ProtocolError, attempts=1)
    assert "not json" in failure.message


async def test_a_200_body_that_is_not_a_completion(server, sleeps):
    odd = Plan(200, {"Content-Type": "application/json"}, [b'{"object": "list", "data": []}'])
    await expect_failure(server, sleeps, "run", [odd], ProtocolError, attempts=1)


ANSWER = "The answer is 5, é ü 漢字 🎉 done."


def _answer_stream(**options) -> Plan:
    return stream(ANSWER, **options)


WIRE_VARIANTS = {
    "split-every-byte": {"split": 1},
    "split-7-bytes": {"split": 7},
    "bom": {"bom": True},
    "bom-split-every-byte": {"bom": True, "split": 1},
    "crlf": {"newline": "\r\n"},
    "cr-only": {"newline": "\r"},
    "cr-only-split-every-byte": {"newline": "\r", "split": 1},
    "keepalive-comments": {"comments": 3},
    "no-done": {"done": False},
    "no-usage-chunk": {"usage": None},
}


@pytest.mark.parametrize("variant", sorted(WIRE_VARIANTS))
async def test_stream_wire_variants_read_the_same(server, sleeps, variant):
    server.script(first_turn(True), _answer_stream(**WIRE_VARIANTS[variant]))
    model = make_model(server, sleeps)
    result = await run(model, "stream")
    await model.aclose()
    assert result.output == ANSWER
    has_usage = variant != "no-usage-chunk"
    assert result.usage.input_tokens == (20 if has_usage else 10)
    assert server.wait_closed(3)


async def test_events_without_data_are_not_dispatched(server, sleeps):
    pieces = [b"event: ping\n\n", b"id: 7\n\n", b"retry: 100\n\n", b"data\n\n"]
    body = [*pieces, *stream("done").pieces]
    server.script(first_turn(True), Plan(200, {"Content-Type": "text/event-stream"}, body))
    model = make_model(server, sleeps)
    result = await run(model, "stream")
    await model.aclose()
    assert result.output == "done"  # the bare "data" line is an empty event: skipped


async def test_a_giant_event_within_the_limit_is_read(server, sleeps):
    text = "x" * 2_000_000
    server.script(first_turn(True), stream(events=chunks_of(text, pieces=1)))
    model = make_model(server, sleeps)
    result = await run(model, "stream")
    await model.aclose()
    assert result.output == text


async def test_an_event_beyond_the_limit_is_a_protocol_error(server, sleeps):
    piece = b"data: " + b"y" * (1 << 20)
    giant = Plan(200, {"Content-Type": "text/event-stream"}, [piece] * 17 + [b"\n\n"])
    failure = await expect_failure(server, sleeps, "stream", [giant], ProtocolError, attempts=1)
    assert "exceeded the limit" in failure.message


ERROR_STREAMS = {
    "openai-data-error": (
        stream(events=[{"error": {"message": "The server had an error", "type": "server_error"}}]),
        InternalServerError,
    ),
    "openrouter-error-chunk": (
        stream(events=[{"id": "g", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            "error": {"code": 502, "message": "Provider returned error"}}]),
        InternalServerError,
    ),
    "openrouter-finish-error-only": (
        stream(events=[{"id": "g", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "error"}]}]),
        InternalServerError,
    ),
    "groq-error-event": (
        Plan(200, {"Content-Type": "text/event-stream"}, [
            b'event: error\ndata: {"error": {"message": "rate limited", "code": 429}}\n\n']),
        RateLimitError,
    ),
    "quota-inside-stream": (
        stream(events=[{"error": {"message": "quota", "code": "insufficient_quota"}}]),
        InsufficientCreditsError,
    ),
    "error-after-text": (
        stream(events=[*chunks_of("partial", usage=None)[:2],
                       {"error": {"message": "upstream died", "code": 502}}]),
        InternalServerError,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERROR_STREAMS))
async def test_errors_inside_a_200_stream_are_typed_and_final(server, sleeps, case):
    plan, cls = ERROR_STREAMS[case]
    failure = await expect_failure(server, sleeps, "stream", [plan], cls, attempts=1)
    assert type(failure) is cls


async def test_missing_done_and_finish_is_incomplete(server, sleeps):
    partial = stream(events=chunks_of("half an answer", usage=None)[:3], done=False)
    failure = await expect_failure(
        server, sleeps, "stream", [partial], IncompleteStreamError, attempts=1
    )
    assert failure.partial is not None
    assert failure.partial.message.content


async def test_usage_only_chunks_and_azure_empty_first_chunk(server, sleeps):
    events = [
        {"id": "", "object": "", "created": 0, "model": "", "choices": [],
         "prompt_filter_results": []},
        *chunks_of("done", usage=None),
        {"id": "s", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
        {"id": "s", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost": 0.5}},
    ]  # fmt: skip
    server.script(first_turn(True), stream(events=events))
    model = make_model(server, sleeps)
    result = await run(model, "stream")
    await model.aclose()
    assert result.output == "done"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (17, 8)


async def test_redirect_is_not_followed(server, sleeps):
    with FaultServer() as elsewhere:
        target = elsewhere.url("/v1/chat/completions")
        moved = Plan(307, {"Location": target}, [b""])
        failure = await expect_failure(server, sleeps, "run", [moved], APIStatusError, attempts=1)
        assert failure.status_code == 307
        assert elsewhere.requests == []


async def test_nothing_leaks_after_many_failed_streams(server, sleeps):
    """A failed stream releases its connection at once, before the model is closed."""
    plans = [stream("abc", abort_after=2, abort="reset"), stream(events=["{bad"]),
             stream(events=[{"error": {"message": "x"}}])] * 5  # fmt: skip
    model = make_model(server, sleeps, retries=0)
    for plan in plans:
        server.script(plan)
        with pytest.raises((ProtocolError, APIConnectionError, APIStatusError)):
            await _drain(model)
        assert server.wait_idle(2)
        slots = model._endpoint.transports.slots()
        assert slots is not None
        assert slots.held == 0  # the connection slot came back
    await model.aclose()
    assert server.wait_closed(3)
    assert server.open_connections == 0


async def _drain(model):
    async with model.stream(_request()) as deltas:
        async for _ in deltas:
            pass


def _request():
    from agentloop import ModelRequest, UserMessage

    return ModelRequest((UserMessage("hi"),))


async def test_keep_alive_connections_are_reused_then_closed(server, sleeps):
    server.script(*[ok("x")] * 6)
    model = make_model(server, sleeps)
    for _ in range(6):
        await model.request(_request())
    assert server.connections == 1  # one pooled connection served all six
    assert server.open_connections == 1
    await model.aclose()
    assert server.wait_closed(3)


def test_fault_server_records_requests_in_json():
    with FaultServer() as running:
        running.script(ok("hi"))
        import httpx

        answer = httpx.post(running.url("/v1/chat/completions"), json={"messages": []})
        assert answer.json()["choices"][0]["message"]["content"] == "hi"
        assert running.requests[0].json() == {"messages": []}
        assert json.loads(running.requests[0].body) == {"messages": []}


async def test_sequential_streams_reuse_one_connection(server, sleeps):
    """A stream is read to the end of its body after ``[DONE]``, so its connection goes back
    to the pool instead of being dropped."""
    server.script(*[stream("abc")] * 5)
    model = make_model(server, sleeps)
    for _ in range(5):
        await _drain(model)
    assert server.connections == 1
    assert server.open_connections == 1
    await model.aclose()
    assert server.wait_closed(3)
