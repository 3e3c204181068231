"""`WorkingLine`: the status line while a model works, on a fake clock (nothing sleeps)."""

from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path

import pytest

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
from agentloop._cli import _Answer  # pyright: ignore[reportPrivateUsage]

CLEAR = "\r\x1b[2K"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def turn(*calls: ToolCall) -> TurnFinished:
    response = ModelResponse(AssistantMessage(None if calls else "ok", calls))
    return TurnFinished(RequestStats.of(response), response)


def drained(stream: io.StringIO) -> str:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return text


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


def test_the_chat_answer_keeps_its_line_clear_of_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, tty, out = Clock(), Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    line = WorkingLine(tty, clock=clock)
    line.begin()
    answer = _Answer(line)
    clock.now += 2
    line.tick()  # the status has the line to itself: "agent> " waits
    assert out.getvalue() == "" and drained(tty).endswith("(2 s)")
    answer.write("Hello")
    assert out.getvalue() == "agent> Hello" and drained(tty) == CLEAR
    clock.now += 2
    line.tick()
    assert drained(tty) == ""  # mid-line: never drawn over the answer
    answer.write("\n  [tool f] -> done\n")
    line.begin()
    clock.now += 2
    line.tick()
    assert drained(tty).endswith("(2 s)")  # a fresh line: shown again


@pytest.mark.anyio
async def test_quickstart_prints_its_usage_and_nothing_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTLOOP_DEMO", "fake")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples"))
    sys.modules.pop("quickstart", None)
    result = await importlib.import_module("quickstart").main()
    printed = capsys.readouterr()
    usage = result.usage
    tokens = f"{usage.input_tokens}/{usage.output_tokens} tokens in/out"
    assert f"requests=2 tool_calls=2, {tokens}, cost=" in printed.out
    assert printed.err == ""
