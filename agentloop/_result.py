"""`RunResult`: what a finished run returns, with the speed figures people compare providers by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from ._messages import Message, ModelResponse, messages_to_json
from ._usage import Usage

if TYPE_CHECKING:
    from ._deferred import PendingApproval

__all__ = ["RequestStats", "RunResult", "RunTiming"]

OutputT = TypeVar("OutputT")


@dataclass(frozen=True, slots=True)
class RequestStats:
    """The figures of one request: seconds to first token and in all, output tokens per second.

    `usage_reported` is False when the server reported no usage: the token counts are then 0,
    meaning unknown, and the request is left out of the run's tokens per second.
    """

    model: str | None
    input_tokens: int
    output_tokens: int
    time_to_first_token: float | None
    latency: float | None
    retries: int
    usage_reported: bool = True
    answered_by: str | None = None
    """The name of the model object that answered (one of a `FallbackModel`'s)."""
    cost: float | None = None
    """USD, from the provider or the catalog; None when unknown."""
    queue_wait: float = 0.0
    """Seconds the request waited for a connection (the `max_connections` cap), retries included."""
    rate_wait: float = 0.0
    """Seconds it waited for its turn under the model's `RateLimit`."""

    @property
    def output_tokens_per_second(self) -> float | None:
        """Output tokens over the generation time (latency less time to first token), or None."""
        if not self.latency or not self.output_tokens:
            return None
        generation = self.latency - (self.time_to_first_token or 0.0)
        return self.output_tokens / generation if generation > 0 else None

    @classmethod
    def of(
        cls, response: ModelResponse, answered_by: str | None = None, cost: float | None = None
    ) -> RequestStats:
        usage = response.usage
        return cls(
            response.model,
            usage.input_tokens,
            usage.output_tokens,
            response.time_to_first_token,
            response.latency,
            response.retries,
            usage.reported,
            answered_by,
            cost,
            response.queue_wait,
            response.rate_wait,
        )


@dataclass(frozen=True, slots=True)
class RunTiming:
    """Figures of a whole run.

    `time_to_first_token` is that of the first request; `output_tokens_per_second` divides all
    output tokens by the time spent generating them (each request's latency less its time to
    first token), over the requests whose usage was reported; `latency` is the wall time of the
    run, tools included. `queue_wait` and `rate_wait` add up its requests' (`RequestStats`):
    the seconds spent waiting for a connection and for the rate limit's turn.
    """

    time_to_first_token: float | None
    output_tokens_per_second: float | None
    latency: float
    queue_wait: float = 0.0
    rate_wait: float = 0.0

    @classmethod
    def of(cls, requests: Sequence[RequestStats], latency: float) -> RunTiming:
        first = requests[0].time_to_first_token if requests else None
        counted = [r for r in requests if r.usage_reported]
        generating = sum(
            (r.latency or 0.0) - (r.time_to_first_token or 0.0) for r in counted if r.latency
        )
        output = sum(r.output_tokens for r in counted)
        rate = output / generating if generating > 0 and output else None
        queued = sum(r.queue_wait for r in requests)
        return cls(first, rate, latency, queued, sum(r.rate_wait for r in requests))


@dataclass(frozen=True, slots=True)
class RunResult(Generic[OutputT]):
    """The output of a run and everything it cost.

    `messages` is the whole transcript (pass it as ``history=`` to continue); `cost` is in USD,
    None when some request had neither a provider-reported cost nor a catalog price. `usage` and
    `cost` include the agents this run called as tools (`Agent.as_tool`); `usage_by_agent` splits
    the usage by agent name (this run's own agent included) when other agents took part (as
    tools or by handoffs), else is empty. `usage_by_model` and `cost_by_model` split this
    run's own requests by the model that answered them (a `FallbackModel` has several; a
    handoff may change the model).
    """

    output: OutputT
    messages: list[Message]
    usage: Usage
    cost: float | None
    requests: tuple[RequestStats, ...]
    timing: RunTiming
    run_id: str
    usage_by_agent: Mapping[str, Usage] = field(default_factory=lambda: {})
    agent: str = "agent"
    """The name of the agent that answered (another than the run's own after a handoff)."""
    pending_approvals: tuple[PendingApproval, ...] = ()
    """With ``approver="defer"``: the calls the run stopped before (its `output` is None);
    resume with `Agent.resume` and `state_json`."""
    saved_state: str | None = field(default=None, repr=False)
    usage_by_model: Mapping[str, Usage] = field(default_factory=lambda: {})
    cost_by_model: Mapping[str, float | None] = field(default_factory=lambda: {})

    def state_json(self) -> str:
        """The stopped run as JSON, for `Agent.resume` (transcript, usage, cost, retries, the
        calls waiting; no keys). Only a run with `pending_approvals` has one."""
        if self.saved_state is None:
            from ._errors import UsageError

            raise UsageError("this run finished: only a run waiting for approvals has a state")
        return self.saved_state

    def messages_json(self) -> bytes:
        """The transcript as JSON; load it with `agentloop.messages_from_json`."""
        return messages_to_json(self.messages)
