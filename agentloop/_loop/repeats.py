"""Repeated calls: a call the run already answered is answered again from that answer.

Models, small ones most of all, call the same tool with the same arguments again after its
result came back, turn after turn, instead of answering. Running the repeat again would do the
tool's work (and its side effects) twice for the same question. So a call with the same tool
name and the same arguments (compared as canonical JSON) as a call that *succeeded* in an
earlier turn of this run does not run: its answer is the earlier result, under a note that says
so. A tool whose result may change between two identical calls (a clock, a random draw, a status
to poll) opts out with ``rerun=True``. Failed calls are never reused (the repeat may be the
model's retry), and neither are two identical calls of one turn (they run side by side, as
asked), nor the calls of the history a run starts from.

When every call of a turn was answered from earlier results, the model has all it asked for: the
loop asks it for its answer on the next request (`OutputStep.answer_now`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .._json import loads
from .._messages import ToolCall, ToolMessage

__all__ = ["Answered", "CallKey", "call_key", "reused_answer"]

CallKey = tuple[str, str]
_NOTE = "Same call as before (same tool, same arguments); not run again. Its result:"


def call_key(call: ToolCall) -> CallKey:
    """The tool's name and its arguments as canonical JSON (the text itself if it is not JSON)."""
    try:
        arguments = json.dumps(loads(call.arguments or "{}"), sort_keys=True)
    except (ValueError, RecursionError):
        arguments = call.arguments
    return call.name, arguments


def reused_answer(call: ToolCall, earlier: ToolMessage) -> ToolMessage:
    """The answer to `call` that repeats `earlier`'s result."""
    return ToolMessage(call.id, f"{_NOTE}\n{earlier.content}", call.name)


class Answered:
    """The successful answers of a run's earlier turns, by call key (the run state owns it)."""

    __slots__ = ("_answers",)

    def __init__(self) -> None:
        self._answers: dict[CallKey, ToolMessage] = {}

    @property
    def answers(self) -> Mapping[CallKey, ToolMessage]:
        return self._answers

    def add(self, keys: Sequence[CallKey], answers: Sequence[ToolMessage]) -> None:
        """Keep the first successful answer of each call key."""
        for key, answer in zip(keys, answers, strict=True):
            if not answer.is_error:
                self._answers.setdefault(key, answer)
