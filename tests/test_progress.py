"""Progress display: the batch bar and `WorkingLine`, on a fake clock (nothing sleeps)."""

from __future__ import annotations

import io

import pytest
from support.terminal import CLEAR, Clock, Terminal, drained

from agentloop import (
    AssistantMessage,
    ModelResponse,
    RequestStats,
    RunFinished,
    RunResult,
    RunTiming,
    TextDelta,
    ToolArgumentsDelta,
    ToolCall,
    ToolCallFinished,
    TurnFinished,
    Usage,
    WorkingLine,
)
from agentloop.batch import BatchProgress, ProgressBar


def test_render_shows_eta_and_skips() -> None:
    bar = ProgressBar(io.StringIO())
    line = bar.render(BatchProgress(8, 2, 10, 3, 40, 0.5, 5.0))
    assert "20/40" in line and "skipped 10" in line and "2.0/s" in line and "eta 10s" in line


def turn(*calls: ToolCall) -> TurnFinished:
    response = ModelResponse(AssistantMessage(None if calls else "ok", calls))
    return TurnFinished(RequestStats.of(response), response)


def test_on_a_terminal_the_line_is_redrawn_each_second_and_cleared() -> None:
    clock, tty = Clock(), Terminal()
    line = WorkingLine(tty, clock=clock)
    line.begin()
    line.tick()
    clock.now += 0.5
    line.tick()
    assert drained(tty) == ""  # a quick answer never shows a line
    clock.now += 0.5
    line.tick()
    assert drained(tty) == CLEAR + "  ... model working (1 s)"
    for _ in range(85):
        line.feed(TextDelta("x"))
    clock.now += 11
    line.tick()
    line.tick()  # at most once per interval
    assert drained(tty) == CLEAR + "  ... model working (12 s, ~85 tokens)"
    line.clear()
    line.clear()  # erased once
    assert drained(tty) == CLEAR


def test_held_output_is_never_drawn_over() -> None:
    clock, tty = Clock(), Terminal()
    line = WorkingLine(tty, clock=clock)
    line.begin()
    line.held = True
    clock.now += 5
    line.tick()
    assert drained(tty) == ""
    line.held = False
    line.tick()
    assert drained(tty) == CLEAR + "  ... model working (5 s)"


def test_elsewhere_one_plain_line_every_ten_seconds() -> None:
    clock, log = Clock(), io.StringIO()
    line = WorkingLine(log, clock=clock)
    line.begin()
    for _ in range(9):
        clock.now += 1
        line.tick()
    assert log.getvalue() == ""  # a request under 10 s adds nothing to a log
    for _ in range(21):
        clock.now += 1
        line.tick()
        line.feed(ToolArgumentsDelta(0, "c1", "{"))
    assert log.getvalue() == (
        "  ... model working (10 s)\n"
        "  ... model working (20 s, ~10 tokens)\n"
        "  ... model working (30 s, ~20 tokens)\n"
    )
    line.clear()  # nothing to erase in a log
    assert log.getvalue().count("\n") == 3 and CLEAR not in log.getvalue()


def test_run_events_move_the_line_between_requests() -> None:
    clock, tty = Clock(), Terminal()
    line = WorkingLine(tty, clock=clock)
    line.begin()
    line.feed(TextDelta("a"))
    clock.now += 3
    line.tick()
    assert drained(tty).endswith("(3 s, ~1 tokens)")
    line.feed(turn(ToolCall("c1", "f")))  # the tools run: the model is not working
    assert drained(tty) == CLEAR
    clock.now += 30
    line.tick()
    assert drained(tty) == ""
    line.feed(ToolCallFinished("c1", "f", "r", False, 0.1))  # the next request starts
    clock.now += 2
    line.tick()
    assert drained(tty) == CLEAR + "  ... model working (2 s)"
    line.feed(turn())  # an answer: the end, or a re-ask
    line.feed(RunFinished(RunResult("ok", [], Usage(), None, (), RunTiming(None, None, 1), "r")))
    clock.now += 5
    line.tick()
    assert drained(tty) == CLEAR


@pytest.mark.anyio
async def test_as_a_context_it_clears_and_lets_errors_through_unwrapped() -> None:
    clock, tty = Clock(), Terminal()

    async def failing_run() -> None:
        async with WorkingLine(tty, clock=clock) as line:
            clock.now += 2
            line.tick()
            assert tty.getvalue() == CLEAR + "  ... model working (2 s)"
            raise KeyError("boom")

    with pytest.raises(KeyError):  # not an exception group
        await failing_run()
    assert tty.getvalue().endswith(CLEAR)  # erased on the way out
    async with WorkingLine(io.StringIO(), clock=clock):
        pass
