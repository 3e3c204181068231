"""Run an agent over many inputs on one machine: bounded, resumable, nothing lost.

For example:

    from agentloop.batch import read_folder, run_batch

    summary = await run_batch(agent, read_folder("docs", "*.txt"), "results.jsonl",
                              prompt=lambda doc: f"Extract the invoice:\\n\\n{doc['text']}")
    print(summary)

Inputs are an iterable or async iterable of strings, mappings (``"id"`` is the key and
``"text"`` the prompt unless `prompt=` says otherwise) or `BatchItem`; they are pulled one at a
time, so memory stays flat however many there are (on resume, the finished keys are held in a
set). Each item runs as one `Agent.run`; transient failures are retried per item, and every item
ends as exactly one result record or one failure record in the sink (`JSONLSink` by default).
Run it again with the same sink and it skips what already succeeded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from pydantic_core import to_jsonable_python

from . import _telemetry
from ._agent import Agent
from ._batch_io import JSONLSink, NullSink, Sink, read_folder, read_jsonl
from ._errors import (
    APIConnectionError,
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    OutputTruncatedError,
    OutputValidationError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    UsageError,
)
from ._limits import Limits
from ._log import get_logger
from ._loop.plan import Prompt
from ._progress import BatchProgress, ProgressBar
from ._result import RunResult
from ._settings import ModelSettings
from ._usage import Usage
from ._wire.retry import RetryPolicy

__all__ = [
    "FATAL",
    "RETRYABLE",
    "BatchItem",
    "BatchProgress",
    "BatchSummary",
    "ItemTally",
    "JSONLSink",
    "ProgressBar",
    "Sink",
    "read_folder",
    "read_jsonl",
    "run_batch",
    "run_batch_sync",
    "run_with_retries",
]

RETRYABLE: tuple[type[Exception], ...] = (
    APIConnectionError,
    RateLimitError,
    InternalServerError,
    ProtocolError,
    OutputValidationError,
    OutputTruncatedError,
)
"""Failures worth another attempt of the item (the client has already retried the request)."""

FATAL: tuple[type[Exception], ...] = (
    AuthenticationError,
    InsufficientCreditsError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
)
"""Failures that every other item would meet too: the batch stops sending new items."""

ITEM_RETRY = RetryPolicy(initial_delay=0.5, max_delay=30.0)
"""The backoff between attempts of one item (its `backoff`; the requests have their own)."""

_log = get_logger()


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One input: its key (unique and stable across runs, for resume), its prompt, its deps."""

    key: str
    prompt: Prompt
    deps: Any = None


@dataclass(slots=True)
class BatchSummary:
    """What a batch did. `cost` sums the known costs; `cost_unknown` counts items without one."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    cost_unknown: int = 0
    elapsed: float = 0.0
    errors: dict[str, int] = field(default_factory=dict[str, int])
    stopped: str | None = None

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    def __str__(self) -> str:
        rate = self.finished / self.elapsed if self.elapsed > 0 else 0.0
        cost = f"${self.cost:.4f}" + (
            f" (+{self.cost_unknown} unpriced)" if self.cost_unknown else ""
        )
        lines = [
            f"succeeded {self.succeeded}, failed {self.failed}, skipped {self.skipped} "
            f"in {self.elapsed:.1f} s ({rate:.1f} items/s)",
            f"requests {self.usage.requests}, {self.usage.describe_tokens()}, "
            f"retries {self.usage.retries}, cost {cost}",
        ]
        lines += [f"  {count} x {name}" for name, count in sorted(self.errors.items())]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        return "\n".join(lines)


@dataclass(slots=True)
class ItemTally:
    """What one item used over all its attempts, failed ones included."""

    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    unpriced: bool = False
    """A request was made whose price is unknown, so `cost` is a lower bound."""
    attempts: int = 0

    @property
    def known_cost(self) -> float | None:
        return None if self.unpriced else self.cost

    def account(self, used: object, cost: object) -> None:
        if isinstance(used, Usage):
            self.usage.add(used)
            self.unpriced = self.unpriced or (used.requests > 0 and cost is None)
        if isinstance(cost, int | float) and math.isfinite(cost):
            self.cost += cost


async def run_with_retries(
    agent: Agent[Any], prompt: Prompt, tally: ItemTally, retries: int, **options: Any
) -> RunResult[Any]:
    """``agent.run(prompt, **options)``, attempted again (at most `retries` more times, after
    `ITEM_RETRY`'s backoff) when it fails with a `RETRYABLE` error; every attempt's usage and cost
    go into `tally`. The last failure is raised."""
    while True:
        tally.attempts += 1
        try:
            result = await agent.run(prompt, **options)
        except Exception as exc:
            tally.account(getattr(exc, "usage", None), getattr(exc, "cost", None))
            if isinstance(exc, RETRYABLE) and tally.attempts <= retries:
                await anyio.sleep(ITEM_RETRY.backoff(tally.attempts - 1))
                continue
            raise
        tally.account(result.usage, result.cost)
        return result


@dataclass(slots=True, kw_only=True)
class _Batch:
    agent: Agent[Any]
    sink: Sink
    prompt: Callable[[Any], Prompt] | None
    retries: int
    max_cost: float | None
    progress: Callable[[BatchProgress], object] | None
    deps: Any
    settings: ModelSettings | None
    limits: Limits | None
    total: int | None
    summary: BatchSummary = field(default_factory=BatchSummary)
    running: int = 0
    started: float = field(default_factory=time.monotonic)
    producer: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def produce(self, inputs: Any, done: set[str], send: ObjectSendStream[Any]) -> None:
        async with send:
            with self.producer:
                index = 0
                async for raw in _aiter(inputs):
                    key = _key(index, raw)
                    index += 1
                    if key in done:
                        self.summary.skipped += 1
                        self._report()
                        continue
                    await send.send((key, raw))

    async def work(self, receive: ObjectReceiveStream[Any]) -> None:
        async with receive:
            async for key, raw in receive:
                if self.summary.stopped:  # taken from the buffer after a stop: not started
                    continue
                self.running += 1
                try:
                    await self.one(key, raw)
                finally:
                    self.running -= 1
                self._report()

    async def one(self, key: str, raw: Any) -> None:
        with _telemetry.span("agentloop.batch.item", {"agentloop.batch.key": key}):
            await self._one(key, raw)

    async def _one(self, key: str, raw: Any) -> None:
        tally, started = ItemTally(), time.monotonic()
        try:
            item = _item(key, raw, self.prompt)
            deps = item.deps if item.deps is not None else self.deps
            result = await run_with_retries(
                self.agent, item.prompt, tally, self.retries,
                deps=deps, settings=self.settings, limits=self.limits,
            )  # fmt: skip
        except Exception as exc:
            self.failure(key, exc, tally, started)
            return
        record = {"key": key, "output": to_jsonable_python(result.output)}
        self.summary.succeeded += 1
        self.sink.write_result(record | _stats(tally, started))
        self._spent(tally)

    def failure(self, key: str, exc: Exception, tally: ItemTally, started: float) -> None:
        name = type(exc).__name__
        self.summary.failed += 1
        self.summary.errors[name] = self.summary.errors.get(name, 0) + 1
        record = {"key": key, "error": name, "message": str(exc)[:2_000]}
        self.sink.write_failure(record | _stats(tally, started))
        _log.warning("batch_item_failed", key=key, error=name, attempts=tally.attempts)
        _telemetry.event("agentloop.batch.item_failed", {"error.type": name})
        self._spent(tally)
        if isinstance(exc, FATAL):
            self.stop(f"{name} on item {key!r}: {str(exc)[:200]}")

    def _spent(self, tally: ItemTally) -> None:
        self.summary.usage.add(tally.usage)
        self.summary.cost += tally.cost
        self.summary.cost_unknown += tally.unpriced
        # A sum of per-item float costs may fall an ulp short of the same amount written once.
        if self.max_cost is not None and self.summary.cost >= self.max_cost * (1 - 1e-9):
            self.stop(f"max_cost ${self.max_cost} reached (${self.summary.cost:.4f} spent)")

    def stop(self, reason: str) -> None:
        if self.summary.stopped is None:
            self.summary.stopped = reason
            _log.warning("batch_stopped", reason=reason)
        self.producer.cancel()

    def _report(self) -> None:
        if self.progress is not None:
            s = self.summary
            elapsed = time.monotonic() - self.started
            snapshot = BatchProgress(
                s.succeeded, s.failed, s.skipped, self.running, self.total, s.cost, elapsed
            )
            self.progress(snapshot)


async def run_batch(
    agent: Agent[Any],
    inputs: Iterable[Any] | AsyncIterable[Any],
    sink: Sink | str | os.PathLike[str] | None = None,
    *,
    prompt: Callable[[Any], Prompt] | None = None,
    concurrency: int = 8,
    retries: int = 2,
    max_cost: float | None = None,
    resume: bool = True,
    progress: bool | Callable[[BatchProgress], object] | None = None,
    deps: Any = None,
    settings: ModelSettings | None = None,
    limits: Limits | None = None,
) -> BatchSummary:
    """Run `agent` once per input, `concurrency` at a time; return the `BatchSummary`.

    Args:
        sink: a `Sink`, or a path for a `JSONLSink` (results there, failures beside it);
            None keeps nothing but the summary.
        prompt: makes an input's prompt (for example a template over a mapping's fields).
        retries: further attempts of an item after a `RETRYABLE` failure, with backoff.
        max_cost: USD for the whole batch; when reached, no new item starts (items in flight
            finish, each bounded by its own `Limits`).
        resume: skip the keys the sink already holds.
        progress: True draws a `ProgressBar` on stderr, None does so on a terminal only,
            a callable receives each `BatchProgress`.
        deps: as for `Agent.run` (a `BatchItem`'s own deps win).
        settings: as for `Agent.run`.
        limits: as for `Agent.run`: the caps of each item's run.
    """
    if concurrency < 1 or retries < 0:
        raise UsageError("concurrency must be >= 1 and retries >= 0")
    sink = _as_sink(sink)
    bar = _progress(progress)
    batch = _Batch(
        agent=agent,
        sink=sink,
        prompt=prompt,
        retries=retries,
        max_cost=max_cost,
        progress=bar,
        deps=deps,
        settings=settings,
        limits=limits,
        total=_length(inputs),
    )
    name = agent.name or "agent"
    try:
        done = sink.done_keys() if resume else set[str]()
        send, receive = anyio.create_memory_object_stream[Any](0)
        with _telemetry.span(f"agentloop.batch {name}", {"gen_ai.agent.name": name}):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(batch.produce, inputs, done, send)
                for _ in range(concurrency):
                    tasks.start_soon(batch.work, receive.clone())
                receive.close()
    finally:
        sink.close()
        batch.summary.elapsed = time.monotonic() - batch.started
        if isinstance(bar, ProgressBar):
            bar.close()
    return batch.summary


def run_batch_sync(
    agent: Agent[Any],
    inputs: Iterable[Any] | AsyncIterable[Any],
    sink: Sink | str | os.PathLike[str] | None = None,
    **options: Any,
) -> BatchSummary:
    """`run_batch` for scripts (starts its own event loop)."""
    summary: BatchSummary = anyio.run(partial(run_batch, agent, inputs, sink, **options))
    return summary


async def _aiter(inputs: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(inputs, AsyncIterable):
        async for raw in inputs:
            yield raw
    else:
        for raw in inputs:
            yield raw


def _key(index: int, raw: Any) -> str:
    if isinstance(raw, BatchItem):
        return raw.key
    if isinstance(raw, Mapping) and "id" in raw:
        return str(raw["id"])  # pyright: ignore[reportUnknownArgumentType]
    return str(index)


def _item(key: str, raw: Any, prompt: Callable[[Any], Prompt] | None) -> BatchItem:
    if isinstance(raw, BatchItem):
        return raw
    if prompt is not None:
        return BatchItem(key, prompt(raw))
    if isinstance(raw, str):
        return BatchItem(key, raw)
    fields: Mapping[str, object] = cast(
        "Mapping[str, object]", raw if isinstance(raw, Mapping) else {}
    )
    text = fields.get("text")
    if isinstance(text, str):
        return BatchItem(key, text)
    kind: str = type(raw).__name__  # pyright: ignore[reportUnknownArgumentType]
    raise UsageError(f"item {key!r}: no prompt in a {kind}; pass prompt=")


def _stats(tally: ItemTally, started: float) -> dict[str, Any]:
    cost = tally.known_cost
    stats: dict[str, Any] = {
        "attempts": tally.attempts,
        "requests": tally.usage.requests,
        "input_tokens": tally.usage.input_tokens,
        "output_tokens": tally.usage.output_tokens,
        "cost": None if cost is None else round(cost, 8),
        "seconds": round(time.monotonic() - started, 3),
    }
    if tally.usage.unreported_requests:  # the token counts are lower bounds (or unknown)
        stats["unreported_requests"] = tally.usage.unreported_requests
    return stats


def _as_sink(sink: Sink | str | os.PathLike[str] | None) -> Sink:
    if sink is None:
        return NullSink()
    if isinstance(sink, str | os.PathLike):
        return JSONLSink(sink)
    return sink


def _progress(
    progress: bool | Callable[[BatchProgress], object] | None,
) -> Callable[[BatchProgress], object] | None:
    if progress is None:
        bar = ProgressBar()
        return bar if bar.tty else None
    if progress is True:
        return ProgressBar()
    return progress or None


def _length(inputs: Any) -> int | None:
    try:
        return len(inputs)
    except TypeError:
        return None
