"""Progress lines on stderr: redrawn on a terminal, periodic elsewhere.

`ProgressBar` draws a batch's progress; `WorkingLine` says that a model request is in flight
(a small model on a CPU can take many seconds before its first token).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup

from ._events import (
    ReasoningDelta,
    RefusalDelta,
    RunFinished,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallFinished,
    TurnFinished,
)

__all__ = ["BatchProgress", "ProgressBar", "WorkingLine"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A snapshot of a batch, given to progress callbacks."""

    succeeded: int
    failed: int
    skipped: int
    running: int
    total: int | None
    cost: float
    elapsed: float

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


class ProgressBar:
    """Draws `BatchProgress` on a stream (stderr by default).

    On a terminal the line is redrawn at most `interval` seconds apart; elsewhere (CI logs, pipes)
    a new line is printed every `log_interval` seconds. The last state is always drawn on close.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        label: str = "batch",
        interval: float = 0.1,
        log_interval: float = 10.0,
        width: int = 24,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.label = label
        self.tty: bool = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval: float = interval if self.tty else log_interval
        self.width = width
        self._last_draw = float("-inf")
        self._last: BatchProgress | None = None

    def __call__(self, progress: BatchProgress) -> None:
        self._last = progress
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(progress, final=False)

    def close(self) -> None:
        if self._last is not None:
            self._draw(self._last, final=True)

    def render(self, progress: BatchProgress) -> str:
        """The progress line, without terminal control characters."""
        done = progress.finished
        rate = done / progress.elapsed if progress.elapsed > 0 else 0.0
        parts = [self.label]
        if progress.total:
            share = min(1.0, (done + progress.skipped) / progress.total)
            filled = round(share * self.width)
            parts.append(f"[{'#' * filled}{'.' * (self.width - filled)}]")
            parts.append(f"{done + progress.skipped}/{progress.total}")
        else:
            parts.append(f"{done} done")
        parts.append(f"ok {progress.succeeded} failed {progress.failed}")
        if progress.skipped:
            parts.append(f"skipped {progress.skipped}")
        parts.append(f"running {progress.running}")
        parts.append(f"{rate:.1f}/s ${progress.cost:.4f} {progress.elapsed:.0f}s")
        left = (progress.total or 0) - done - progress.skipped
        if progress.total and rate > 0 and left > 0:
            parts.append(f"eta {left / rate:.0f}s")
        return " ".join(parts)

    def _draw(self, progress: BatchProgress, *, final: bool) -> None:
        line = self.render(progress)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


_CLEAR = "\r\x1b[2K"  # to the start of the line, and erase it
_TOKEN_EVENTS = (TextDelta, ReasoningDelta, RefusalDelta, ToolArgumentsDelta)


class WorkingLine:
    """``  ... model working (12 s, ~85 tokens)`` on stderr while a model request is in flight.

    On a terminal the line is drawn in place once the request has taken `interval` seconds, then
    redrawn about every `interval`; call `clear` before printing anything else (`held` keeps it
    hidden while your output stands in the middle of a line). Elsewhere (pipes, CI logs, tests)
    it prints nothing unless a request takes `log_interval` seconds, then one plain line every
    `log_interval`.

    ``async with WorkingLine() as line:`` starts the clock and a task that calls `tick` once a
    second, and clears the line on the way out; pass every event of a streamed run to `feed`:
    deltas count tokens (a delta is about a token, hence the ``~``), `TurnFinished` with tool
    calls hides the line while the tools run, `ToolCallFinished` and `TurnFinished` without
    tool calls start the next request's clock, `RunFinished` hides it. A run that is not
    streamed shows the seconds only. `clock` is for tests.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        label: str = "model working",
        interval: float = 1.0,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.label = label
        self.tty: bool = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.held = False
        self._every = interval if self.tty else log_interval
        self._clock = clock
        self._active = False
        self._started = 0.0
        self._next = 0.0
        self._tokens = 0
        self._drawn = False
        self._tasks: TaskGroup | None = None

    def begin(self) -> None:
        """A request starts: time it from now, with no tokens yet."""
        now = self._clock()
        self._active, self._started, self._next, self._tokens = True, now, now + self._every, 0

    def stop(self) -> None:
        """No request in flight: erase the line and draw nothing until `begin`."""
        self.clear()
        self._active = False

    def feed(self, event: object) -> None:
        """Follow a run event (see the class docstring). It never draws: `tick` does."""
        if isinstance(event, _TOKEN_EVENTS):
            self._tokens += 1
        elif isinstance(event, ToolCallFinished):
            self.begin()  # after the last call of a turn, the next request starts
        elif isinstance(event, TurnFinished):
            if event.response.message.tool_calls:
                self.stop()
            else:
                self.begin()  # the end, or a re-ask: RunFinished says which
        elif isinstance(event, RunFinished):
            self.stop()

    def render(self) -> str:
        """The status text, without terminal control characters."""
        seconds = max(0.0, self._clock() - self._started)
        tokens = f", ~{self._tokens} tokens" if self._tokens else ""
        return f"  ... {self.label} ({seconds:.0f} s{tokens})"

    def tick(self) -> None:
        """Draw the line if a request is in flight, the output allows, and it is time."""
        if not self._active or self.held or self._clock() < self._next:
            return
        self._next = self._clock() + self._every
        if self.tty:
            self.stream.write(_CLEAR + self.render())
            self._drawn = True
        else:
            self.stream.write(self.render() + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line from the terminal if it is drawn (before printing something else)."""
        if self._drawn:
            self._drawn = False
            self.stream.write(_CLEAR)
            self.stream.flush()

    async def __aenter__(self) -> WorkingLine:
        self.begin()
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._ticking)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._tasks is not None
        self._tasks.cancel_scope.cancel()
        try:
            # The ticker never raises: an exception leaving the block propagates as it is,
            # never wrapped in an exception group.
            await self._tasks.__aexit__(None, None, None)
        finally:
            self._tasks = None
            self.stop()

    async def _ticking(self) -> None:
        try:
            while True:
                await anyio.sleep(self.interval)
                self.tick()
        except (OSError, ValueError):  # stderr closed or broken: stop showing, not the run
            return
