"""`RateLimit` against a real HTTP server on 127.0.0.1: requests spread evenly, tokens booked
and corrected, and a 429 or an exhausted budget header pausing every request that shares it."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from support.local_server import LocalServer, Reply

from agentloop import DEFAULT_PROFILE, Agent, OpenAICompatible, RateLimit, UsageError
from agentloop._messages import RequestUsage
from agentloop._wire.rate_limit import LocalSchedule, parse_reset


def ok(prompt: int = 10, completion: int = 2) -> Reply:
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    return Reply(200, json_body=body)


def model(server: LocalServer, limit: RateLimit, **options) -> OpenAICompatible:
    return OpenAICompatible(
        "m", base_url=server.base_url, profile=DEFAULT_PROFILE, rate_limit=limit, **options
    )


def arrivals(server: LocalServer) -> list[float]:
    return sorted(r.at for r in server.requests)


@pytest.mark.anyio
async def test_twenty_concurrent_runs_are_spread_over_two_seconds(server: LocalServer) -> None:
    server.handler = lambda _: ok()
    agent = Agent(model(server, RateLimit(requests_per_minute=600)))
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(agent.run, "hi")
    times = arrivals(server)
    assert len(times) == 20
    # One request every 0.1 s, never a burst: the last cannot go before 1.9 s. (Measured from
    # the start: a loaded machine may delay the first, never bring the last forward.)
    assert times[-1] - started >= 1.9


@pytest.mark.anyio
async def test_two_models_given_one_limit_share_it(server: LocalServer) -> None:
    server.handler = lambda _: ok()
    limit = RateLimit(requests_per_minute=1200)
    first, second = Agent(model(server, limit)), Agent(model(server, limit))
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for index in range(10):
            group.start_soon((first if index % 2 else second).run, "hi")
    assert arrivals(server)[-1] - started >= 9 * 0.05


@pytest.mark.anyio
async def test_a_429_pauses_every_request_sharing_the_limit(server: LocalServer) -> None:
    """The first request meets a 429 asking for 1.2 s: the other run, whose turn came 0.5 s
    after the first, waits for the pause too."""
    replies = iter([Reply(429, headers={"Retry-After": "1.2"}, json_body={"error": {}})])
    server.handler = lambda _: next(replies, None) or ok()
    agent = Agent(model(server, RateLimit(requests_per_minute=120)))
    async with anyio.create_task_group() as group:
        group.start_soon(agent.run, "first")
        await anyio.sleep(0.01)
        group.start_soon(agent.run, "second")
    times = arrivals(server)
    assert len(times) == 3
    assert times[1] - times[0] >= 1.1 and times[2] - times[0] >= 1.1


@pytest.mark.anyio
async def test_a_spent_budget_header_pauses_until_its_reset(server: LocalServer) -> None:
    spent = ok()
    spent.headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "500ms"}
    replies = iter([spent])
    server.handler = lambda _: next(replies, None) or ok()
    agent = Agent(model(server, RateLimit(requests_per_minute=6000)))
    await agent.run("first")
    await agent.run("second")
    times = arrivals(server)
    assert times[1] - times[0] >= 0.45


@pytest.mark.anyio
async def test_tokens_pace_the_requests_and_the_answer_corrects_the_booking(
    server: LocalServer,
) -> None:
    """60,000 tokens a minute is 1,000 a second. The first answer reports 500 tokens used,
    far more than its small body booked, so the second request waits about half a second."""
    server.handler = lambda _: ok(prompt=450, completion=50)
    agent = Agent(model(server, RateLimit(tokens_per_minute=60_000)))
    await agent.run("hi")
    await agent.run("hi")
    times = arrivals(server)
    assert times[1] - times[0] >= 0.4


@pytest.mark.anyio
async def test_a_stream_waits_its_turn_and_is_corrected_too(server: LocalServer) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": {"prompt_tokens": 450, "completion_tokens": 50}},
    ]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    server.handler = lambda _: Reply.stream([body])
    agent = Agent(model(server, RateLimit(tokens_per_minute=60_000)))
    for _ in range(2):
        async with agent.run_stream("hi") as stream:
            async for _ in stream:
                pass
    times = arrivals(server)
    assert times[1] - times[0] >= 0.4


def test_the_schedule_books_requests_and_tokens() -> None:
    schedule = LocalSchedule(requests_per_minute=60, tokens_per_minute=6_000)
    assert schedule.book(10, now=100.0) == 0.0  # the first goes at once
    assert schedule.book(10, now=100.0) == pytest.approx(1.0)  # then one a second
    assert schedule.book(1_000, now=100.0) == pytest.approx(2.0)
    assert schedule.book(10, now=100.0) == pytest.approx(12.0)  # 1,000 tokens: 10 s of budget
    schedule.correct(-900)  # the big request used 100 tokens, not 1,000
    assert schedule.book(10, now=200.0) == 0.0


def test_settle_corrects_only_reported_usage() -> None:
    limit = RateLimit(tokens_per_minute=60)  # a token a second
    schedule = limit.schedule
    assert isinstance(schedule, LocalSchedule)
    schedule.book(0, now=0.0)
    limit.settle(0, RequestUsage(5, 5))
    assert schedule.book(0, now=0.0) == pytest.approx(10.0)
    limit.settle(0, RequestUsage(reported=False))
    assert schedule.book(0, now=20.0) == 0.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m", 3720.0), ("2.5", 2.5), ("x", None)],
)
def test_parse_reset(value: str, seconds: float | None) -> None:
    assert parse_reset(value) == seconds


def test_a_limit_needs_a_positive_budget() -> None:
    with pytest.raises(UsageError, match="needs requests_per_minute"):
        RateLimit()
    with pytest.raises(UsageError, match="tokens_per_minute must be a positive"):
        RateLimit(tokens_per_minute=0)
    assert "600" in repr(RateLimit(600))


def test_the_pause_is_shared_by_time() -> None:
    limit = RateLimit(requests_per_minute=6_000)
    limit.pause(0.3)
    schedule = limit.schedule
    assert isinstance(schedule, LocalSchedule)
    assert schedule.book(0, time.monotonic()) >= 0.25


def test_a_local_limit_cannot_be_sent_to_another_process() -> None:
    import pickle

    with pytest.raises(UsageError, match="shared_rate_limit"):
        pickle.dumps(RateLimit(requests_per_minute=60))
