"""A dependency-free progress line for batches: redrawn on a terminal, periodic elsewhere."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

__all__ = ["BatchProgress", "ProgressBar"]


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
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
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
