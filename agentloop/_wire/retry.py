"""When to retry a failed request, and how long to wait first.

The policy of the reference client: connection errors, timeouts, 408, 409, 429 and 5xx are
retried (a quota error never is); an ``x-should-retry: true|false`` header overrides the status.
The wait is the server's (``retry-after-ms``, else ``retry-after`` in seconds or as an HTTP date)
when it is more than 0 and at most `max_retry_after`; a longer wait is not honoured and the error
is final at once, its message saying how long the server asked for. Otherwise the wait is an
exponential backoff with jitter: ``min(0.5 * 2**n, 8) * (1 - 0.25 * random())``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .._errors import APIConnectionError, APIError, APIStatusError, InsufficientCreditsError

__all__ = ["RetryPolicy", "parse_retry_after"]

_RETRY_STATUSES = frozenset({408, 409, 429})


def _finite(text: str | None, scale: float = 1.0) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip()) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait the server asks for, in seconds (may be 0 or negative); None if it asks none.

    ``retry-after-ms`` first, then ``retry-after`` as seconds, then as an HTTP date (relative to
    `now`, a Unix time, default the current time). Garbage and non-finite values count as none.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    delay = _finite(lowered.get("retry-after-ms"), 0.001)
    if delay is not None:
        return delay
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    delay = _finite(raw)
    if delay is not None:
        return delay
    try:
        from email.utils import parsedate_to_datetime  # ~10 ms to import: only when needed

        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - (time.time() if now is None else now)


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    for key, value in headers.items():
        if key.lower() == "x-should-retry":
            if value.strip().lower() == "true":
                return True
            if value.strip().lower() == "false":
                return False
    return None


def _default_sleep() -> Callable[[float], Awaitable[None]]:
    import anyio  # here: anyio loads with the first policy, not with `import agentloop`

    return anyio.sleep


def _default_random() -> Callable[[], float]:
    import random  # here, as anyio above

    return random.random


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a model retries. `sleep` and `random` are injectable so tests need not wait.

    - `max_retries`: retries after the first attempt (default 2: three attempts in all).
    - `max_retry_after`: the longest server-asked wait honoured, in seconds (default 60).
    - `initial_delay` / `max_delay`: the backoff's first wait and its ceiling, in seconds.
    """

    max_retries: int = 2
    max_retry_after: float = 60.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], Awaitable[None]] = field(default_factory=_default_sleep, repr=False)
    random: Callable[[], float] = field(default_factory=_default_random, repr=False)

    def __post_init__(self) -> None:
        from .._errors import UsageError

        if self.max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, not {self.max_retries}")
        if not self.max_retry_after >= 0:
            raise UsageError(f"max_retry_after must be 0 or more, not {self.max_retry_after}")

    def backoff(self, retry: int) -> float:
        """The jittered wait before retry number `retry` (0 for the first retry)."""
        base = min(self.initial_delay * 2.0 ** min(retry, 64), self.max_delay)
        return base * (1.0 - 0.25 * self.random())

    def is_retryable(self, error: APIError, headers: Mapping[str, str] | None = None) -> bool:
        """Whether the error is worth another attempt, ignoring the retry budget."""
        if isinstance(error, InsufficientCreditsError):
            return False
        if isinstance(error, APIConnectionError):
            return True
        if not isinstance(error, APIStatusError):
            return False
        override = _should_retry_header(headers or {})
        if override is not None:
            return override
        status = error.status_code
        return status in _RETRY_STATUSES or status >= 500

    def delay(
        self, retry: int, error: APIError, headers: Mapping[str, str] | None = None
    ) -> float | None:
        """Seconds to wait before retry number `retry` (0-based), or None when `error` is final.

        A server-asked wait beyond `max_retry_after` makes the error final; `note_wait_too_long`
        then explains it in the error's message.
        """
        if retry >= self.max_retries or not self.is_retryable(error, headers):
            return None
        asked = parse_retry_after(headers) if headers else None
        if asked is not None and asked > self.max_retry_after:
            return None
        if asked is not None and asked > 0:
            return asked
        return self.backoff(retry)

    def wait_too_long(self, headers: Mapping[str, str] | None) -> float | None:
        """The server-asked wait when it is beyond `max_retry_after`, else None."""
        asked = parse_retry_after(headers) if headers else None
        return asked if asked is not None and asked > self.max_retry_after else None

    def note_wait_too_long(self, error: APIStatusError, asked: float) -> None:
        """Say in `error` that the server asked for a wait longer than the policy honours."""
        error.retry_after = asked
        error.message = (
            f"{error.message} (the server asked to wait {asked:.0f} s before retrying, beyond "
            f"the {self.max_retry_after:.0f} s this client waits; not retried)"
        )
        error.args = (error.message,)
