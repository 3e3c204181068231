"""`RunState`: the one owner of a run's mutable state, written by the loop alone.

The transcript, the usage, the cost, the request figures, the retry counts and the turns all
change here and nowhere else: stages return values (a response, a `ReAsk`, a `ToolOutcome`) and
the loop hands them to the state. `RunContext` (what tools and validators see) shares the state's
transcript, usage and retry counts, read-only by convention.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._context import RunContext
from .._deferred import PendingApproval, SavedRun
from .._errors import AgentloopError
from .._limits import Limits
from .._messages import AssistantMessage, Message, ModelResponse, ToolCall, ToolMessage
from .._prices import CostMeter
from .._result import RequestStats, RunResult, RunTiming
from .._subrun import AgentSpend, RunBudget
from .._usage import Usage
from .dispatch import ToolOutcome
from .repeats import Answered, call_key

if TYPE_CHECKING:
    from .._wire.models import Model

__all__ = ["RunState"]


class RunState:
    """A run's transcript and totals (see the module). `ctx` is the context tools receive."""

    __slots__ = (
        "_retries",
        "_started",
        "agent_name",
        "answered",
        "by_agent",
        "by_model",
        "ctx",
        "meter",
        "model",
        "stats",
        "turns",
    )

    def __init__(self, deps: Any, model: Model, agent_name: str = "agent") -> None:
        self._retries: dict[str, int] = {}
        self.ctx: RunContext[Any] = RunContext(
            deps, Usage(), [], uuid.uuid4().hex[:16], self._retries
        )
        self.meter = CostMeter()
        self.model = model  # the answering agent's (a handoff changes it)
        self.by_model: dict[str, tuple[Usage, float | None]] = {}
        self.stats: list[RequestStats] = []
        self.turns = 0
        self.answered = Answered()
        self.agent_name = agent_name  # the agent answering now (a handoff changes it)
        self.ctx.agent = agent_name
        # What other agents spent: those run as tools, and those that handed the run over.
        # The agent answering now spent the rest of the usage.
        self.by_agent: dict[str, Usage] = {}
        self._started = time.perf_counter()

    def give_budget(self, limits: Limits) -> None:
        """What tools that run agents (`Agent.as_tool`) read: the limits, the usage, the cost."""
        self.ctx.budget = RunBudget(limits, self.ctx.usage, lambda: self.meter.total)

    @property
    def messages(self) -> list[Message]:
        return self.ctx.messages

    @property
    def usage(self) -> Usage:
        return self.ctx.usage

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def cost(self) -> float | None:
        """USD so far; None once any request's cost is unknown."""
        return self.meter.total

    def extend(self, messages: Iterable[Message]) -> None:
        self.ctx.messages.extend(messages)

    def add_response(self, response: ModelResponse, model: Model | None = None) -> None:
        """A model turn: its message joins the transcript; its usage, cost and figures count.
        `model` answered it (one of a `FallbackModel`'s), when not the agent's own."""
        model = model or self.model
        cost = self.account(response, model)
        self.stats.append(RequestStats.of(response, model.name, cost))
        self.ctx.messages.append(response.message)

    def account(self, response: ModelResponse, model: Model | None = None) -> float | None:
        """The usage and cost of a request (also one the transcript does not keep), counted
        for the run and for the model that answered; the request's cost."""
        model = model or self.model
        usage = response.usage
        self.ctx.usage.add_request(usage, retries=response.retries)
        cost = self.meter.add(model.name, usage, provider=model.system)
        own, spent = self.by_model.get(model.name) or (Usage(), 0.0)
        own.add_request(usage, retries=response.retries)
        total = None if spent is None or cost is None else spent + cost
        self.by_model[model.name] = (own, total)
        return cost

    def add_tool_outcome(self, outcome: ToolOutcome) -> None:
        """A turn's tool answers join the transcript (and the answered calls, for repeats);
        its calls and retries count."""
        self.ctx.messages.extend(outcome.answers)
        if outcome.images is not None:
            self.ctx.messages.append(outcome.images)
        self.answered.add(outcome.keys, outcome.answers)
        self.ctx.usage.tool_calls += len(outcome.answers)
        for key in outcome.retried:
            self.count_retry(key)
        budget = self.ctx.budget
        if budget is not None and budget.spent:
            self._add_spent(budget.spent)
            budget.spent.clear()

    def _add_spent(self, spent: Iterable[AgentSpend]) -> None:
        """What agents run as tools spent joins the run's usage and cost, and their totals."""
        for spend in spent:
            self.ctx.usage.add(spend.usage)
            self.meter.add_cost(spend.cost)
            self.by_agent.setdefault(spend.agent, Usage()).add(spend.usage)

    def count_retry(self, key: str) -> None:
        self._retries[key] = self._retries.get(key, 0) + 1
        self.ctx.usage.retries += 1

    def take_handoff(self) -> str | None:
        """The handoff tool the model called in the last turn (the first, if several)."""
        budget = self.ctx.budget
        if budget is None or not budget.handoffs:
            return None
        called = budget.handoffs[0]
        budget.handoffs.clear()
        return called

    def hand_over(self, agent_name: str, model: Model, messages: list[Message]) -> None:
        """Another agent answers from now on, from `messages` (the transcript it takes over)."""
        self.by_agent.setdefault(self.agent_name, Usage()).add(self._own_usage())
        self.agent_name = self.ctx.agent = agent_name
        self.model = model
        self.ctx.messages[:] = messages

    def result(self, output: Any) -> RunResult[Any]:
        elapsed = time.perf_counter() - self._started
        stats = tuple(self.stats)
        return RunResult(
            output,
            list(self.ctx.messages),
            self.ctx.usage.copy(),
            self.meter.total,
            stats,
            RunTiming.of(stats, elapsed),
            self.ctx.run_id,
            self._usage_by_agent(),
            self.agent_name,
            usage_by_model={name: used.copy() for name, (used, _) in self.by_model.items()},
            cost_by_model={name: cost for name, (_, cost) in self.by_model.items()},
        )

    def _usage_by_agent(self) -> dict[str, Usage]:
        if not self.by_agent:
            return {}
        totals = {name: usage.copy() for name, usage in self.by_agent.items()}
        totals.setdefault(self.agent_name, Usage()).add(self._own_usage())
        return totals

    def _own_usage(self) -> Usage:
        """What the agent answering now spent: the run's usage less the other agents'."""
        own = self.ctx.usage.copy()
        for other in self.by_agent.values():
            own.take_away(other)
        return own

    def restore(self, saved: SavedRun, model: Model) -> None:
        """Go on from a saved run (`Agent.resume`): its transcript, totals, retries and turns,
        with the agent that answered when it stopped (whose model is `model`)."""
        self.agent_name = self.ctx.agent = saved.agent
        self.model = model
        self.by_agent = {name: used.copy() for name, used in saved.by_agent.items()}
        self.by_model = {name: (used.copy(), cost) for name, (used, cost) in saved.by_model.items()}
        self.ctx.run_id = saved.run_id
        self.ctx.messages[:] = saved.messages
        self.ctx.usage.add(saved.usage)
        self.meter.total = saved.cost
        self._retries.update(saved.retries)
        self.turns = saved.turns
        self._recall_answers(saved.messages)

    def _recall_answers(self, messages: Sequence[Message]) -> None:
        """The answered calls of the saved run, so that a repeat after it resumes gets the
        earlier answer as it would have before (see `repeats`)."""
        calls: dict[str, ToolCall] = {}  # the calls of the last model turn, which answers follow
        for message in messages:  # ids are unique within a turn only (some servers reuse them)
            if isinstance(message, AssistantMessage):
                calls = {call.id: call for call in message.tool_calls}
            elif isinstance(message, ToolMessage) and message.tool_call_id in calls:
                self.answered.add([call_key(calls[message.tool_call_id])], [message])

    def paused(self, pending: tuple[PendingApproval, ...]) -> RunResult[Any]:
        """The result of a run stopped before calls that need approval (its output is None)."""
        saved = SavedRun(
            self.ctx.run_id,
            self.agent_name,
            self.turns,
            self.ctx.usage.copy(),
            self.meter.total,
            dict(self._retries),
            list(self.ctx.messages),
            tuple(p.id for p in pending),
            {name: used.copy() for name, used in self.by_agent.items()},
            {name: (used.copy(), cost) for name, (used, cost) in self.by_model.items()},
        )
        result = self.result(None)
        return dataclasses.replace(result, pending_approvals=pending, saved_state=saved.to_json())

    def attach_to(self, error: AgentloopError) -> None:
        """A failed run loses nothing: the error carries the transcript, usage and cost."""
        error.messages = list(self.ctx.messages)
        error.usage = self.ctx.usage.copy()
        error.cost = self.meter.total
