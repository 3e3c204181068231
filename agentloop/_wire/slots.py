"""The connection slots of a transport, handed out fairly under load.

`Slots` caps the requests in flight on one owned transport (``max_connections``). The
requests beyond the cap wait in two first-come-first-served queues, and a freed slot goes to
the head of the first non-empty one:

1. returning work: a retry of a request that already held a slot, and any request of a task
   whose work already held one (a run's later turns, its streamed producer, its tools);
2. fresh work: a task's first request.

So a run that has started is not sent to the back of the queue behind every run that began
after it, each time it retries or takes its next turn: under a burst larger than the pool, runs
finish roughly in the order they started, instead of all of them finishing near the end of the
burst. Among returning work, and among fresh work, the order is arrival order. A task's work is
returning once it has held a slot (the mark lives in a context variable, so the tasks it starts
inherit it); a task that never sends a request is never marked. Fresh work waits while the
returning work keeps every slot busy, which lasts as long as the runs already started have
turns left to take.

Every operation is O(1) (amortized where the queues are compacted): a freed slot is handed
straight to its waiter (nobody barges in ahead of the queue), a free slot is taken without a
checkpoint, and a waiter cancelled while queued is only marked gone and skipped when its turn
comes (the queues are compacted once the gone outnumber the waiting by `_COMPACT_AT`). A waiter
cancelled just as a slot was handed to it passes the slot on, so cancellation never leaks one.
The seconds a request waited are measured only when it had to wait (two clock reads);
`QueueMeter` adds them up for a piece of work (tools/load.py uses one per run, to say how much
of a run that missed its deadline was spent waiting).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator
from contextvars import ContextVar

import anyio

from .._errors import APIError

__all__ = ["QueueMeter", "Slots", "note_waits", "queue_meter"]

_COMPACT_AT = 64
"""Gone waiters kept in the queues at most (beyond the number waiting) before compaction."""
_served: ContextVar[bool] = ContextVar("agentloop_slot_served", default=False)
_meter: ContextVar[QueueMeter | None] = ContextVar("agentloop_queue_meter", default=None)


class QueueMeter:
    """Seconds that one piece of work (a task and the tasks it starts) spent waiting for a
    connection: `waited` for the waits that ended, `waiting` for those still going on;
    `cut` counts the waits that ended cancelled (a deadline passed while the work waited)."""

    __slots__ = ("_since", "cut", "waited")

    def __init__(self) -> None:
        self.waited: float = 0.0
        self.cut: int = 0
        self._since: dict[object, float] = {}

    def waiting(self, now: float) -> float:
        """Seconds spent so far in the waits still going on (at the clock time `now`)."""
        return sum(now - start for start in self._since.values())

    def began(self, wait: object, now: float) -> None:
        self._since[wait] = now

    def ended(self, wait: object, seconds: float) -> None:
        del self._since[wait]
        self.waited += seconds


@contextlib.contextmanager
def queue_meter() -> Generator[QueueMeter]:
    """Measure the connection waits of the work done inside the block (on one task)."""
    meter = QueueMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


class _Waiter:
    __slots__ = ("event", "gone", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False
        self.gone = False


class Slots:
    """At most `total` slots held at once; the rest wait, returning work first (see above)."""

    __slots__ = ("_dead", "_free", "_fresh", "_returning", "_waiting", "total")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("a connection cap is at least 1")
        self.total: int = total
        self._free = total
        self._returning: deque[_Waiter] = deque()
        self._fresh: deque[_Waiter] = deque()
        self._waiting = 0
        self._dead = 0

    def __repr__(self) -> str:
        return f"<Slots {self.held}/{self.total} held, {self._waiting} waiting>"

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self.total - self._free

    @property
    def waiting(self) -> int:
        """Requests queued for a slot now."""
        return self._waiting

    def take_nowait(self) -> bool:
        """Take a free slot at once (no checkpoint); False when none is free."""
        if self._free:  # a free slot means nobody waits: release hands slots to waiters
            self._free -= 1
            if not _served.get():
                _served.set(True)
            return True
        return False

    async def take(self, clock: Callable[[], float], *, retry: bool = False) -> float:
        """Wait for a slot (after `take_nowait` failed); the seconds waited on `clock`.

        `retry`: the request held a slot before (its earlier attempt failed), so it waits
        with the returning work whatever its task.
        """
        waiter = _Waiter()
        returning = retry or _served.get()
        (self._returning if returning else self._fresh).append(waiter)
        self._waiting += 1
        meter, start = _meter.get(), clock()
        if meter is not None:
            meter.began(waiter, start)
        try:
            await waiter.event.wait()
        except BaseException:
            self._leave(waiter)
            if meter is not None:
                meter.cut += 1
            raise
        finally:
            waited = clock() - start
            if meter is not None:
                meter.ended(waiter, waited)
        if not returning:
            _served.set(True)
        return waited

    def release(self) -> None:
        """Give a slot back: to the first live waiter, returning work first, else to the pool."""
        for queue in (self._returning, self._fresh):
            while queue:
                waiter = queue.popleft()
                if waiter.gone:
                    self._dead -= 1
                    continue
                waiter.granted = True
                self._waiting -= 1
                waiter.event.set()
                return
        self._free += 1

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter was cancelled: pass on the slot it was just handed, or leave the queue."""
        if waiter.granted:
            self.release()
            return
        waiter.gone = True
        self._waiting -= 1
        self._dead += 1
        if self._dead > _COMPACT_AT + self._waiting:
            self._returning = deque(w for w in self._returning if not w.gone)
            self._fresh = deque(w for w in self._fresh if not w.gone)
            self._dead = 0


def note_waits(error: APIError, connection: float, rate: float = 0.0) -> None:
    """Add to a timeout's message how long the request waited before its attempt's deadline
    began: for a connection, and for its rate limit's turn (nothing when it hardly waited)."""
    waits = [f"{connection:.1f} s for a connection"] if connection >= 0.05 else []
    if rate >= 0.05:
        waits.append(f"{rate:.1f} s for its rate limit's turn")
    if waits:
        error.message = f"{error.message} (before it, the request waited {' and '.join(waits)})"
        error.args = (error.message,)
