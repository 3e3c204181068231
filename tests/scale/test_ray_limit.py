"""A `RateLimit` shared through a Ray actor: actors, each in its own process, keep one budget."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from agentloop import RateLimit  # noqa: E402
from agentloop.ray_data import map_agent, shared_rate_limit  # noqa: E402

from .agents import placed_extraction_agent, prompt_of  # noqa: E402

_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS.parent / "tools"))

from fakechat import answer  # noqa: E402
from faultserver import FaultServer, Plan, Request  # noqa: E402

PER_MINUTE = 1200  # one request every 0.05 s
JITTER = 0.25  # seconds: a request waits for the limiter's answer, which may come late


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray on 2 CPUs, on loopback, without usage reports; workers import tests/."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_TESTS), saved["PYTHONPATH"]) if p)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _server() -> FaultServer:
    """The fake chat's answers after 20 ms, in this process; each request recorded with its time."""

    def handle(request: Request) -> Plan:
        return replace(answer(request.json())[2], header_delay=0.02)

    return FaultServer(handle)


def most_allowed(per_minute: float) -> float:
    """The most requests a second may hold under the budget, give or take `JITTER` (an answer
    that comes late sends its request late, closer to the next)."""
    return (1 + JITTER) * per_minute / 60 + 1


def busiest_second(times: list[float]) -> int:
    """The most requests in any window of one second."""
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_two_actors_stay_under_one_shared_budget(local_ray: Any) -> None:
    limit = shared_rate_limit(RateLimit(requests_per_minute=PER_MINUTE))
    count = 100
    with _server() as server:
        factory = partial(placed_extraction_agent, server.base_url, limit)
        items = [{"id": f"d{i}", "text": "word " * (i % 7 + 1)} for i in range(count)]
        ds = local_ray.data.from_items(items, override_num_blocks=10)
        out = map_agent(ds, factory, prompt=prompt_of, actors=2, concurrency=16, batch_size=10)
        rows = out.take_all()
        requests = list(server.requests)
    assert sorted(str(r["id"]) for r in rows) == sorted(str(i["id"]) for i in items)
    assert [r for r in rows if r["error"] is not None] == []
    senders = Counter(r.headers["x-pid"] for r in requests)
    assert len(senders) == 2 and min(senders.values()) >= count // 5, senders  # both sent
    times = sorted(r.at for r in requests)
    gap = 60 / PER_MINUTE
    assert times[-1] - times[0] >= (count - 1) * gap - JITTER
    assert busiest_second(times) <= most_allowed(PER_MINUTE)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_the_actor_keeps_the_pace_of_tokens_and_pauses(local_ray: Any) -> None:
    """Reserve, correct and pause reach the limiter actor, from asyncio and from trio."""
    limit = shared_rate_limit(RateLimit(tokens_per_minute=60_000))  # 1,000 tokens a second
    schedule = limit.schedule
    assert await schedule.reserve(1000) == 0
    assert await schedule.reserve(500) == pytest.approx(1.0, abs=0.1)
    schedule.correct(1000)  # the second request used 1,500 tokens: 1 s more for the next
    assert await schedule.reserve(0) == pytest.approx(2.5, abs=0.1)
    schedule.pause(10)
    assert await schedule.reserve(0) == pytest.approx(10, abs=0.2)
