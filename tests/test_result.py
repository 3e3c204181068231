"""Run results: speed figures and timing arithmetic."""

from __future__ import annotations

import pytest
from support.scripted import add

from agentloop import Agent
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


async def test_plain_results_carry_speed_figures() -> None:
    server = FakeServer(
        [
            tool_call(("add", {"a": 1, "b": 2})),
            reply("three", usage={"prompt_tokens": 50, "completion_tokens": 40}),
        ]
    )
    result = await Agent(server.model(), tools=[add]).run("q")
    assert len(result.requests) == 2
    for stats in result.requests:
        assert stats.latency is not None and stats.latency > 0
        assert stats.time_to_first_token is not None
        assert stats.time_to_first_token <= stats.latency
        assert stats.model == "fake-model"
    last = result.requests[1]
    assert last.output_tokens == 40
    if last.output_tokens_per_second is not None:  # None only when generation took no time
        assert last.output_tokens_per_second > 0
    timing = result.timing
    assert timing.latency >= sum(s.latency or 0 for s in result.requests)
    assert timing.time_to_first_token == result.requests[0].time_to_first_token


def test_timing_arithmetic() -> None:
    from agentloop._result import RequestStats, RunTiming

    a = RequestStats("m", 10, 30, 0.5, 2.0, 0)
    b = RequestStats("m", 10, 20, 0.25, 0.75, 1)
    assert a.output_tokens_per_second == pytest.approx(20.0)
    timing = RunTiming.of([a, b], 5.0)
    assert timing.time_to_first_token == 0.5
    assert timing.output_tokens_per_second == pytest.approx(50 / 2.0)
    assert timing.latency == 5.0
    assert RequestStats("m", 1, 0, 0.1, 1.0, 0).output_tokens_per_second is None
    assert RunTiming.of([], 1.0).output_tokens_per_second is None
