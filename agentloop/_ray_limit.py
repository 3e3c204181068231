"""A `RateLimit` kept by one Ray actor, so that every process and node of a cluster shares it.

The limiter actor holds a `LocalSchedule` and books each request on its own clock: a request
asks it for its turn and gets back the seconds to wait, so the clocks of different machines
never mix. Corrections and pauses are sent without waiting for an answer. The actor is placed
on the node of the process that creates it (the driver), so it outlives the worker nodes; if it
dies anyway, Ray starts it again (with a fresh pace) and the requests waiting ask again.

`RaySchedule` is the proxy; it pickles to any Ray worker with the actor's handle, so a
`RateLimit` built on it can go into an agent factory's arguments and be given to the models
the factory builds, in every actor.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

from ._wire.rate_limit import LocalSchedule, RateLimit

__all__ = ["LimiterCore", "RaySchedule", "ray_rate_limit"]


class LimiterCore:
    """What the limiter actor runs: a `LocalSchedule`, its time read where it lives."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self._schedule = LocalSchedule(requests_per_minute, tokens_per_minute)

    def reserve(self, tokens: int) -> float:
        return self._schedule.book(tokens, time.monotonic())

    def correct(self, tokens: int) -> None:
        self._schedule.correct(tokens)

    def pause(self, seconds: float) -> None:
        self._schedule.pause(seconds)


class RaySchedule:
    """A `Schedule` that forwards to a limiter actor (a handle to a `LimiterCore` actor)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def reserve(self, tokens: int) -> float:
        ref: Any = self.actor.reserve.remote(tokens)
        if _on_asyncio():
            return float(await ref)  # Ray's object refs are awaitable on asyncio
        import anyio.to_thread

        from .ray_data import require_ray

        return float(await anyio.to_thread.run_sync(require_ray().get, ref))

    def correct(self, tokens: int) -> None:
        self.actor.correct.remote(tokens)

    def pause(self, seconds: float) -> None:
        self.actor.pause.remote(seconds)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def ray_rate_limit(ray: Any, limit: RateLimit) -> RateLimit:
    """`limit`'s budget, kept by a new limiter actor on this process's node."""
    strategies: Any = importlib.import_module("ray.util.scheduling_strategies")
    node = ray.get_runtime_context().get_node_id()
    here = strategies.NodeAffinitySchedulingStrategy(node, soft=True)
    options = {"num_cpus": 0, "scheduling_strategy": here, "max_restarts": -1}
    actor_class: Any = ray.remote(max_task_retries=-1, **options)(LimiterCore)
    actor = actor_class.remote(limit.requests_per_minute, limit.tokens_per_minute)
    return limit.shared(RaySchedule(actor))
