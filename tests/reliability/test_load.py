"""The load tool and its slow answers: they arrive whole; runs cut in the queue are no hangs."""

from __future__ import annotations

import re

import pytest

from agentloop._messages import ModelRequest, UserMessage
from reliability.helpers import FaultServer, make_model

from faultserver import ok, slowed, stream  # isort: skip
import load  # isort: skip

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest((UserMessage("hi"),))


@pytest.mark.parametrize("kind", ["slow_headers", "slow_body"])
async def test_a_slow_answer_arrives_whole_and_late(server, sleeps, kind):
    server.script(slowed(ok("slowly"), kind, 0.3), slowed(stream("slowly"), kind, 0.3))
    model = make_model(server, sleeps)
    answer = await model.request(REQUEST)
    async with model.stream(REQUEST) as deltas:
        async for _ in deltas:
            pass
    await model.aclose()
    for response in (answer, deltas.response):
        assert response.message.content == "slowly"
        assert response.latency is not None and response.latency >= 0.25


async def test_latency_and_jitter_delay_every_answer(sleeps):
    with FaultServer(latency=0.2, jitter=0.1, seed=3) as server:
        server.script(ok("a"), ok("b"))
        model = make_model(server, sleeps)
        answers = [await model.request(REQUEST) for _ in range(2)]
        await model.aclose()
    assert all(a.latency is not None and a.latency >= 0.2 for a in answers)


def test_load_reports_its_figures_and_loses_nothing(capsys):
    argv = ["--runs", "40", "--fault-rate", "0.1", "--max-connections", "3", "--slow-rate",
            "0.2", "--slow", "0.05", "--latency", "0.002", "--jitter", "0.003"]  # fmt: skip
    assert load.main(argv) == 0
    out = capsys.readouterr().out
    assert "slow_headers" in out or "slow_body" in out
    for figure in ("run latency: p50", "waiting for a connection, per run: p50", "memory per run"):
        assert figure in out
    assert "lost: 0" in out


def test_a_run_cut_while_waiting_for_a_connection_is_not_a_hang(capsys):
    """One connection, answers 0.2 s apart, runs cut at 1 s: at most three runs got a
    connection, the others were cut in the queue (and are not counted lost)."""
    argv = ["--runs", "12", "--fault-rate", "0", "--max-connections", "1", "--latency", "0.2",
            "--run-timeout", "1"]  # fmt: skip
    load.main(argv)
    out = capsys.readouterr().out
    cut = re.search(r"timed out waiting for a connection\s+(\d+)", out)
    assert cut is not None and int(cut.group(1)) >= 9, out
    lost = re.search(r"lost: (\d+)", out)  # at most a run in flight, not mostly queued
    assert lost is not None and int(lost.group(1)) <= 1, out
