"""A budget of model requests shared by every DBOS worker, kept by a DBOS queue's rate limiter.

DBOS limits how many workflows of a queue *start* in any rolling window (``limiter={"limit": n,
"period": seconds}``), counting across every process through the system database. A permit is
a workflow that does nothing, enqueued on such a queue: when it has started, the model request
it stands for may go. A budget of `r` requests a minute becomes ``n = max(1, r // 60)`` starts
per ``60 n / r`` seconds: the same rate, in bursts of at most a second's share.

In a run, the permit is a child workflow: DBOS records it with the run, so a replayed request
takes no second permit (a request in flight when its worker died is sent again on its old
permit). Waiting costs the queue's polling (a quarter of the period, between 0.05 and 0.5 s) and
a database read per poll and waiting request; the pace comes out slightly under the budget.

DBOS counts starts, not tokens: a `RateLimit` with ``tokens_per_minute`` is refused here; give
each worker's model its share of the tokens (``rate_limit=`` of the model, kept in-process).
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import UsageError
from ._wire.rate_limit import RateLimit

__all__ = ["PERMIT_WORKFLOW", "RatePermits", "register_permit_workflow"]

PERMIT_WORKFLOW = "agentloop.rate_permit"
_registered: list[Any] = []  # the permit workflow, registered once per process


def register_permit_workflow() -> Any:
    """The permit workflow, registered with DBOS (once; before ``DBOS.launch()``)."""
    if not _registered:

        async def rate_permit() -> None:
            """Nothing: having started is the permit."""

        dbos: Any = importlib.import_module("dbos").DBOS
        _registered.append(dbos.workflow(name=PERMIT_WORKFLOW)(rate_permit))
    return _registered[0]


class RatePermits:
    """Permits for model requests from the DBOS queue `queue`, at `rate_limit`'s requests per
    minute for all the workers together (see the module for how)."""

    def __init__(self, rate_limit: RateLimit, queue: str) -> None:
        per_minute = rate_limit.requests_per_minute
        if per_minute is None or rate_limit.tokens_per_minute is not None:
            raise UsageError(
                "a DBOS rate limit shares requests_per_minute only (DBOS's queue limiter "
                "counts requests): give tokens_per_minute to each worker's model instead"
            )
        self.queue: str = queue
        self.limit: int = max(1, int(per_minute // 60))
        self.period: float = 60.0 * self.limit / per_minute
        self.poll: float = min(0.5, max(0.05, self.period / 4))
        self._registered: Any = None

    def __repr__(self) -> str:
        return f"RatePermits({self.queue!r}, limit={self.limit}, period={self.period:g})"

    async def take(self) -> None:
        """Wait until this request's permit has started (inside a run: durably, once)."""
        dbos: Any = importlib.import_module("dbos").DBOS
        if self._registered is None:  # needs a launched DBOS: registered at first use
            self._registered = await dbos.register_queue_async(
                self.queue,
                limiter={"limit": self.limit, "period": self.period},
                polling_interval_sec=self.poll,
            )
        handle = await self._registered.enqueue_async(register_permit_workflow())
        await handle.get_result(polling_interval_sec=self.poll)
