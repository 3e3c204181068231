"""`Limits`: what one run may consume. The loop's guard (`agentloop._loop.guard`) enforces them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Caps on one run. None means no cap. Exceeding one raises `UsageLimitExceeded`.

    - `max_turns`: model turns that end in tool calls, plus the final one.
    - `max_requests`: requests sent, re-asks included (HTTP retries are not requests).
    - `max_input_tokens` / `max_output_tokens` / `max_total_tokens`: reported tokens. A request
      whose usage the server did not report counts with an estimate instead (its prompt counted
      here, its answer's text at about four characters a token), so that a cap still holds
      against such a server; a warning is logged once per run when that happens.
    - `max_cost`: USD, checked before each request with an estimate and after it with the cost.
    - `max_repeated_calls`: the same tool with the same arguments this many times in a row.
    """

    max_turns: int | None = None
    max_requests: int | None = 50
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_cost: float | None = None
    max_repeated_calls: int | None = 3
