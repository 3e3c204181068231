"""What a run consumed: `Usage`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._messages import RequestUsage

COUNTS = (  # the fields, in order
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "tool_calls",
    "retries",
    "unreported_requests",
)

__all__ = ["Usage"]


@dataclass(slots=True)
class Usage:
    """Totals of a run. Mutable while the run goes; the result holds the final copy.

    `retries` counts HTTP retries of requests plus re-asks for invalid tool arguments or output.
    `tool_calls` counts the calls the model made, each answered once (a repeat answered from an
    earlier call's result counts, though its tool did not run again).
    The token counts are what the server reported. `unreported_requests` counts the requests
    whose usage it did not report (`RequestUsage.reported` is False: llama-cpp-python's server
    in a stream, for example); they add no tokens, so while it is above zero the token counts
    are lower bounds, and `fully_reported` is False. `describe_tokens` says all that for a
    person. The run's cost in USD is on the result (`RunResult.cost`), not here.
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0
    retries: int = 0
    unreported_requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens (reported ones: see `fully_reported`)."""
        return self.input_tokens + self.output_tokens

    @property
    def fully_reported(self) -> bool:
        """Whether the server reported the usage of every request (True before any request)."""
        return self.unreported_requests == 0

    def describe_tokens(self) -> str:
        """The token counts for a person, saying how much of them is known.

        ``120/30 tokens in/out`` when every request's usage was reported;
        ``at least 120/30 tokens in/out (1 of 3 requests unreported)`` when only some were;
        ``tokens unknown (the server reported none)`` when none was.
        """
        if self.requests and self.unreported_requests >= self.requests:
            return "tokens unknown (the server reported none)"
        counts = f"{self.input_tokens}/{self.output_tokens} tokens in/out"
        if self.unreported_requests:
            missing = f"{self.unreported_requests} of {self.requests} requests unreported"
            return f"at least {counts} ({missing})"
        return counts

    def add_request(self, usage: RequestUsage, *, retries: int = 0) -> None:
        self.requests += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_tokens += usage.cached_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        self.retries += retries
        if not usage.reported:
            self.unreported_requests += 1

    def add(self, other: Usage) -> None:
        """Add another run's totals to these (the totals of a batch, for example)."""
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.tool_calls += other.tool_calls
        self.retries += other.retries
        self.unreported_requests += other.unreported_requests

    def take_away(self, other: Usage) -> None:
        """Take another's totals out of these (an agent's share of a run it took part in)."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) - getattr(other, name))

    def copy(self) -> Usage:
        return dataclasses.replace(self)
