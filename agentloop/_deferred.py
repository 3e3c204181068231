"""Approvals that wait: a run stops before calls that need approval, and resumes elsewhere.

With ``Agent(approver="defer")`` a turn whose calls include a tool marked ``requires_approval``
does not run: the run returns at once, ``result.pending_approvals`` lists those calls (id, tool,
arguments) and ``result.state_json()`` holds the run as JSON: the transcript, usage, cost,
retries, turns and the calls waiting; never a key. ``await agent.resume(state, approvals={id:
True | False})``, in this process or another, runs that turn (approved calls run, refused ones
are answered to the model as refused, the turn's other calls run as usual) and goes on. Usage and
cost continue from the saved ones. A state is only read, so resuming the same state twice is two
independent continuations (whose approved tools each run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ._errors import UsageError
from ._loop.repeats import CallKey, call_key
from ._messages import AssistantMessage, Message, ToolCall, messages_from_json, messages_to_json
from ._usage import COUNTS, Usage

if TYPE_CHECKING:
    from ._context import RunContext
    from ._tools import Tool

__all__ = ["PendingApproval", "Resumed", "SavedRun", "needing_approval"]

VERSION = 1


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """A call waiting for a decision: its id, its tool and its arguments (JSON text)."""

    id: str
    tool: str
    arguments: str


@dataclass(frozen=True, slots=True)
class SavedRun:
    """A run stopped before calls that need approval, as `state_json` writes it."""

    run_id: str
    agent: str
    turns: int
    usage: Usage
    cost: float | None
    retries: Mapping[str, int]
    messages: list[Message]
    pending: tuple[str, ...]
    by_agent: Mapping[str, Usage] = field(default_factory=lambda: {})
    """What other agents spent (handed the run over, or run as tools), by agent."""
    by_model: Mapping[str, tuple[Usage, float | None]] = field(default_factory=lambda: {})
    """This run's own requests, by the model that answered them: usage and cost."""

    def to_json(self) -> str:
        usage = _counts(self.usage)
        return json.dumps(
            {
                "agentloop_state": VERSION,
                "run_id": self.run_id,
                "agent": self.agent,
                "turns": self.turns,
                "usage": usage,
                "cost": self.cost,
                "retries": dict(self.retries),
                "pending": list(self.pending),
                "messages": json.loads(messages_to_json(self.messages)),
                "by_agent": {name: _counts(used) for name, used in self.by_agent.items()},
                "by_model": {
                    name: {"usage": _counts(used), "cost": cost}
                    for name, (used, cost) in self.by_model.items()
                },
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SavedRun:
        """The saved run, or `UsageError` saying what is wrong with `text`."""
        try:
            data = _object(json.loads(text))
            if data.get("agentloop_state") != VERSION:
                raise ValueError("not a run state written by result.state_json()")
            usage = _usage(data["usage"])
            by_agent = {str(k): _usage(v) for k, v in _object(data.get("by_agent", {})).items()}
            by_model = {
                str(k): (_usage(v["usage"]), None if v["cost"] is None else float(v["cost"]))
                for k, v in _object(data.get("by_model", {})).items()
            }
            retries = _object(data["retries"])
            pending: list[Any] = list(data["pending"])
            saved = cls(
                str(data["run_id"]),
                str(data["agent"]),
                int(data["turns"]),
                usage,
                None if data["cost"] is None else float(data["cost"]),
                {str(k): int(v) for k, v in retries.items()},
                messages_from_json(json.dumps(data["messages"])),
                tuple(str(i) for i in pending),
                by_agent,
                by_model,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot resume from this state: {exc}") from None
        saved.waiting_calls()  # checks the transcript ends with the calls waiting
        return saved

    def waiting_calls(self) -> tuple[ToolCall, ...]:
        """The calls of the turn the run stopped before (the last message's)."""
        last = self.messages[-1] if self.messages else None
        if not isinstance(last, AssistantMessage) or not last.tool_calls:
            raise UsageError("cannot resume from this state: its transcript has no calls waiting")
        ids = {call.id for call in last.tool_calls}
        if not set(self.pending) <= ids:
            raise UsageError("cannot resume from this state: its pending calls are not its last")
        return last.tool_calls


@dataclass(frozen=True, slots=True)
class Resumed:
    """What `Agent.resume` hands the loop: the saved run and the decisions."""

    saved: SavedRun
    approvals: Mapping[str, bool]

    def check(self) -> None:
        missing = [i for i in self.saved.pending if i not in self.approvals]
        if missing:
            raise UsageError(f"no decision for the pending call(s) {', '.join(missing)}")
        unknown = sorted(set(self.approvals) - set(self.saved.pending))
        if unknown:
            raise UsageError(f"decisions for calls that are not pending: {', '.join(unknown)}")

    def decide(self, call: ToolCall, ctx: RunContext[Any]) -> bool:
        return bool(self.approvals.get(call.id, False))


def _counts(usage: Usage) -> dict[str, int]:
    return {name: getattr(usage, name) for name in COUNTS}


def _usage(value: Any) -> Usage:
    counts = _object(value)
    return Usage(**{name: int(counts[name]) for name in COUNTS})


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object")
    return cast("dict[str, Any]", value)


def needing_approval(
    calls: Sequence[ToolCall], tools: Mapping[str, Tool], earlier: Mapping[CallKey, object]
) -> tuple[PendingApproval, ...]:
    """The calls of a turn whose tool needs approval, except repeats of calls the run already
    answered (`earlier`): those get the earlier answer without running, as in any turn."""
    pending: list[PendingApproval] = []
    for call in calls:
        tool = tools.get(call.name)
        if tool is None or not tool.requires_approval:
            continue
        if not tool.rerun and call_key(call) in earlier:
            continue
        pending.append(PendingApproval(call.id, call.name, call.arguments))
    return tuple(pending)
