"""`RateLimit`: a provider's budget of requests and tokens per minute, shared by every request
that goes through the model objects it is given to, whatever run, task or thread sends it.

Requests are spread evenly, never sent in bursts: at 600 requests a minute, one every 0.1 s
(providers enforce per-minute limits over shorter windows, so a burst meets 429s a smooth pace
does not). A request's tokens are estimated before it is sent (its body's bytes over four) and
the estimate corrected with the usage of the answer, so the token budget paces the requests that
follow. Three signals from the provider tighten the pace for everyone: a 429 (its wait, or the
retry policy's, pauses every request, not only the one that met it), and the
``x-ratelimit-remaining-requests`` / ``-tokens`` headers at 0 (which pause until
``x-ratelimit-reset-requests`` / ``-tokens``).

Where the pace is kept is a `Schedule`: `LocalSchedule` in this process (the default), or one
that engines share between processes and machines (a Ray actor: `agentloop.ray_data`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Protocol

import anyio

from .._errors import UsageError
from .._log import get_logger
from .._messages import RequestUsage

__all__ = ["LocalSchedule", "RateLimit", "Schedule", "parse_reset"]

_log = get_logger()
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES_PER_TOKEN = 4


class Schedule(Protocol):
    """Where a `RateLimit`'s pace is kept; every method takes effect for all who share it."""

    async def reserve(self, tokens: int) -> float:
        """Book the next request, of about `tokens` tokens; the seconds to wait before it."""
        ...

    def correct(self, tokens: int) -> None:
        """A booked request used `tokens` more tokens than booked (fewer when negative)."""
        ...

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` from now (the provider asked to wait)."""
        ...


class LocalSchedule:
    """The pace in this process: the time the next request may go, for requests and tokens
    (a generic cell rate algorithm with no burst). Safe across threads and event loops."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self._request_gap = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._token_gap = 60.0 / tokens_per_minute if tokens_per_minute else 0.0
        self._next_request = 0.0
        self._next_token = 0.0
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[object, ...]:
        raise UsageError(
            "a RateLimit kept in this process cannot be sent to another (a copy would not share "
            "the budget): on Ray use agentloop.ray_data.shared_rate_limit(limit), on DBOS "
            "DBOSAgent(..., rate_limit=limit)"
        )

    def book(self, tokens: int, now: float) -> float:
        """`reserve` at the time `now` (on `time.monotonic`'s clock)."""
        with self._lock:
            start = max(now, self._next_request, self._next_token)
            self._next_request = start + self._request_gap
            self._next_token = start + tokens * self._token_gap
        return start - now

    async def reserve(self, tokens: int) -> float:
        return self.book(tokens, time.monotonic())

    def correct(self, tokens: int) -> None:
        if self._token_gap:
            with self._lock:
                self._next_token += tokens * self._token_gap

    def pause(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        with self._lock:
            self._next_request = max(self._next_request, until)
            self._next_token = max(self._next_token, until)


class RateLimit:
    """A budget of requests and tokens per minute, for ``rate_limit=`` of any model.

    Every request through the models given the same `RateLimit` object shares it: all the runs
    of an agent, of a batch, of several agents. See the module for how the pace is kept and
    tightened. ``RateLimit(requests_per_minute=500, tokens_per_minute=200_000)``.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        for name, value in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if value is not None and not value > 0:
                raise UsageError(f"{name}_per_minute must be a positive number, not {value!r}")
        if requests_per_minute is None and tokens_per_minute is None:
            raise UsageError("a RateLimit needs requests_per_minute, tokens_per_minute or both")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.schedule: Schedule = schedule or LocalSchedule(requests_per_minute, tokens_per_minute)

    def __repr__(self) -> str:
        return (
            f"RateLimit(requests_per_minute={self.requests_per_minute!r}, "
            f"tokens_per_minute={self.tokens_per_minute!r})"
        )

    def shared(self, schedule: Schedule) -> RateLimit:
        """The same budget, kept by `schedule` (one that processes share)."""
        return RateLimit(self.requests_per_minute, self.tokens_per_minute, schedule=schedule)

    @staticmethod
    def estimate(content: bytes) -> int:
        """The tokens booked for a request body before its answer says how many it used."""
        return len(content) // _BYTES_PER_TOKEN

    async def wait(self, tokens: int) -> float:
        """Wait for the turn of a request of about `tokens` tokens; the seconds waited."""
        delay = await self.schedule.reserve(tokens)
        if delay > 0:
            await anyio.sleep(delay)
        return delay

    def settle(self, booked: int, usage: RequestUsage) -> None:
        """The answer of a request booked at `booked` tokens used `usage` (unless unreported)."""
        if usage.reported and self.tokens_per_minute:
            used = usage.input_tokens + usage.output_tokens
            if used != booked:
                self.schedule.correct(used - booked)

    def pause(self, seconds: float) -> None:
        """Nothing is sent for `seconds` (a 429's wait): everyone sharing the limit waits."""
        if seconds > 0:
            _log.info("rate_limit_pause", seconds=round(seconds, 3))
            self.schedule.pause(seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """The provider's ``x-ratelimit-*`` headers (lower-cased names): a budget at 0 pauses
        everyone until it is reset."""
        for kind in ("requests", "tokens"):
            left = headers.get(f"x-ratelimit-remaining-{kind}")
            if left is None or left.strip() not in ("0", "0.0"):
                continue
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
            if reset:
                self.pause(reset)


def parse_reset(value: str | None) -> float | None:
    """Seconds from an ``x-ratelimit-reset-*`` value: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"2"``."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT[unit] for number, unit in parts)
