"""Run an agent as a Ray Data stage: many machines, or many processes of one (the `ray` extra).

::

    import ray
    from agentloop.ray_data import map_agent

    ds = ray.data.read_json("docs.jsonl")
    out = map_agent(ds, make_agent, prompt=lambda row: row["text"], actors=4)
    out.write_parquet("results/")

`map_agent` adds a ``map_batches`` stage served by a pool of actors (`ActorPoolStrategy` through
``compute=``). Each actor builds its agent once from `agent_factory` (an importable function:
agents hold functions and clients, so they are built where they run, never pickled), owns an event
loop in a thread (an anyio blocking portal, asyncio or trio) and runs the rows of its batches
concurrently, at most `concurrency` at a time. Every row comes out once: the input columns, plus
``output`` (the output as JSON text), ``error`` and ``error_type`` (null on success), and the
run's ``requests``, ``input_tokens``, ``output_tokens`` and ``cost``. Failures are rows, never lost.

Actors ask for `num_cpus` CPUs each (a fraction by default: the work is waiting on the network,
and on a small machine whole CPUs per actor would leave Ray Data waiting forever for room).
Ray Data restarts an actor lost with its node and runs its batches again elsewhere: every row is
still in the output once, but the rows of the lost batches were run twice.

`shared_rate_limit` makes one `RateLimit` for the whole cluster: a limiter actor keeps the pace,
and the models of every actor, given the result through the factory, ask it for their turn::

    limit = shared_rate_limit(RateLimit(requests_per_minute=500))
    out = map_agent(ds, functools.partial(make_agent, limit), actors=4)
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from pydantic_core import to_json

from ._errors import UsageError

if TYPE_CHECKING:
    from ._agent import Agent
    from ._loop.plan import Prompt
    from ._wire.rate_limit import RateLimit
    from .batch import ItemTally

__all__ = [
    "ERROR_COLUMNS",
    "AgentMapper",
    "RowOutcome",
    "map_agent",
    "require_ray",
    "shared_rate_limit",
]

INSTALL_HINT = "pip install 'agentloop[ray]'"
ERROR_COLUMNS = ("output", "error", "error_type", "requests", "input_tokens", "output_tokens")
"""The columns `AgentMapper` adds (and ``cost``)."""

AgentFactory = Callable[[], "Agent[Any]"]
PromptOf = Callable[[dict[str, Any]], "Prompt"]


def require_ray() -> Any:
    """The `ray` module, or a `UsageError` naming the extra to install."""
    try:  # by name: the extra may be missing where the type checker runs
        importlib.import_module("ray.data")
        return importlib.import_module("ray")
    except ImportError as exc:
        raise UsageError(f"agentloop.ray_data needs Ray Data: {INSTALL_HINT} ({exc})") from None


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What one row became: the output as JSON text, or the error; and what the run used."""

    output: str | None = None
    error: str | None = None
    error_type: str | None = None
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


def _default_prompt(column: str) -> PromptOf:
    def prompt(row: dict[str, Any]) -> Prompt:
        return str(row[column])

    return prompt


class AgentMapper:
    """The callable class of the ``map_batches`` stage: one per actor, pyarrow batches in and out.

    `retries` extra attempts are made for the failures `agentloop.batch.RETRYABLE` names, with
    the backoff of `agentloop.batch.ITEM_RETRY`; a row's usage and cost count every attempt.
    """

    def __init__(
        self,
        agent_factory: AgentFactory,
        *,
        prompt: PromptOf | None = None,
        text_column: str = "text",
        concurrency: int = 32,
        retries: int = 2,
        backend: str = "asyncio",
    ) -> None:
        if concurrency < 1 or retries < 0:
            raise UsageError("concurrency must be >= 1 and retries >= 0")
        self._agent = agent_factory()
        self._prompt = prompt or _default_prompt(text_column)
        self._retries = retries
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = start_blocking_portal(
            backend
        )
        self._portal = self._portal_cm.__enter__()
        self._limiter: anyio.CapacityLimiter = self._portal.call(_limiter, concurrency)

    def __call__(self, batch: Any) -> Any:
        """A `pyarrow.Table` of rows in, the same rows with the outcome columns out."""
        rows: list[dict[str, Any]] = batch.to_pylist()
        outcomes = self._portal.call(self._run_rows, rows)
        return _with_outcomes(batch, outcomes)

    def close(self) -> None:
        """Close the agent's model and stop the event loop (Ray does it when the actor ends)."""
        portal, self._portal_cm = self._portal_cm, None
        if portal is not None:
            self._portal.call(self._agent.model.aclose)
            portal.__exit__(None, None, None)

    async def _run_rows(self, rows: list[dict[str, Any]]) -> list[RowOutcome]:
        outcomes: list[RowOutcome] = [RowOutcome()] * len(rows)

        async def one(index: int) -> None:
            async with self._limiter:
                outcomes[index] = await self._run_row(rows[index])

        async with anyio.create_task_group() as tg:
            for index in range(len(rows)):
                tg.start_soon(one, index)
        return outcomes

    async def _run_row(self, row: dict[str, Any]) -> RowOutcome:
        from .batch import ItemTally, run_with_retries

        tally = ItemTally()
        try:
            result = await run_with_retries(self._agent, self._prompt(row), tally, self._retries)
        except Exception as exc:
            return _outcome(tally, error=exc)
        return _outcome(tally, output=to_json(result.output, fallback=str).decode())


async def _limiter(total: int) -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(total)


def _outcome(
    tally: ItemTally, *, output: str | None = None, error: Exception | None = None
) -> RowOutcome:
    return RowOutcome(
        output=output,
        error=None if error is None else str(error) or repr(error),
        error_type=None if error is None else type(error).__name__,
        requests=tally.usage.requests,
        input_tokens=tally.usage.input_tokens,
        output_tokens=tally.usage.output_tokens,
        cost=tally.known_cost,
    )


def _with_outcomes(batch: Any, outcomes: list[RowOutcome]) -> Any:
    pa: Any = importlib.import_module("pyarrow")  # untyped; installed with Ray Data
    columns: Mapping[str, tuple[Any, list[Any]]] = {
        "output": (pa.string(), [o.output for o in outcomes]),
        "error": (pa.string(), [o.error for o in outcomes]),
        "error_type": (pa.string(), [o.error_type for o in outcomes]),
        "requests": (pa.int64(), [o.requests for o in outcomes]),
        "input_tokens": (pa.int64(), [o.input_tokens for o in outcomes]),
        "output_tokens": (pa.int64(), [o.output_tokens for o in outcomes]),
        "cost": (pa.float64(), [_finite(o.cost) for o in outcomes]),
    }
    table: Any = batch
    for name, (kind, values) in columns.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(pa.field(name, kind), pa.array(values, type=kind))
    return table


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def shared_rate_limit(limit: RateLimit) -> RateLimit:
    """`limit`'s budget kept by one Ray actor, shared by every model given the result, in any
    process or node of the cluster (call it in the driver, after ``ray.init``).

    The result pickles with the actor's handle: pass it to the agent factory (for example
    ``functools.partial(make_agent, limit)``) and give it to the models the factory builds, as
    ``rate_limit=``. Each request then asks the actor for its turn (one round trip).
    """
    from ._ray_limit import ray_rate_limit

    return ray_rate_limit(require_ray(), limit)


def map_agent(
    dataset: Any,
    agent_factory: AgentFactory,
    *,
    prompt: PromptOf | None = None,
    text_column: str = "text",
    actors: int = 1,
    num_cpus: float = 0.25,
    concurrency: int = 32,
    batch_size: int = 64,
    calls_per_actor: int = 2,
    retries: int = 2,
    backend: str = "asyncio",
    map_batches_args: Mapping[str, Any] | None = None,
) -> Any:
    """`dataset` with the agent's outcome added to every row (see the module docstring).

    `actors` actors of `num_cpus` CPUs each; each runs up to `concurrency` rows at once, across
    up to `calls_per_actor` batches of `batch_size` rows in flight (so that one slow row does not
    hold the actor idle). `map_batches_args` are more keyword arguments of ``map_batches``
    (``runtime_env``, ``resources``, ``memory``, ...; they win over the ones made here). Ray
    Data restarts a lost actor and sends its batches again. The result is lazy, as Ray Data
    datasets are.
    """
    ray = require_ray()
    if actors < 1 or calls_per_actor < 1 or batch_size < 1 or not num_cpus > 0:
        raise UsageError("actors, calls_per_actor and batch_size must be >= 1, num_cpus > 0")
    compute = ray.data.ActorPoolStrategy(
        size=actors,
        max_tasks_in_flight_per_actor=calls_per_actor,
        max_concurrent_calls_per_actor=calls_per_actor,
        enable_true_multi_threading=True,  # batches overlap: the rows wait on the network
    )
    options: dict[str, Any] = {
        "fn_constructor_args": (agent_factory,),
        "fn_constructor_kwargs": {
            "prompt": prompt,
            "text_column": text_column,
            "concurrency": concurrency,
            "retries": retries,
            "backend": backend,
        },
        "batch_format": "pyarrow",
        "batch_size": batch_size,
        "compute": compute,
        "num_cpus": num_cpus,
    }
    return dataset.map_batches(AgentMapper, **{**options, **(map_batches_args or {})})
