"""The run loop: the only place that knows the order of the stages.

prompt -> messages -> request -> model -> response -> tool dispatch | output validation -> result.
Streamed and non-streamed runs share this loop; a stream only passes an event sink. The loop
reads the agent's `RunPlan` and this run's `RunArgs`; it alone changes the `RunState`, with what
each stage returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _telemetry
from .._deferred import needing_approval
from .._errors import (
    AgentloopError,
    OutputTruncatedError,
    RefusalError,
    UsageError,
    UsageLimitExceeded,
)
from .._log import get_logger
from .._messages import ModelRequest, ModelResponse, ToolCall
from .._wire.fallback import FallbackModel
from .._wire.request_tokens import counter_for
from .dispatch import ToolTurn, canonical_tool_name
from .guard import LimitGuard
from .lanes import Lanes
from .output_step import OUTPUT_RETRIES, OutputStep, ReAsk
from .repeats import call_key
from .start import initial_messages, with_instructions
from .state import RunState
from .window import Window

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from .._deferred import Resumed
    from .._events import EventSink
    from .._handoff import HandoffPlan
    from .._result import RunResult
    from .._settings import ModelSettings
    from .._wire.models import Model
    from .._wire.request_tokens import RequestCounter
    from .plan import RunArgs, RunPlan
    from .toolsets import RunToolsets

__all__ = ["run_loop"]

_log = get_logger()


def run_loop(plan: RunPlan, args: RunArgs, sink: EventSink | None) -> Awaitable[RunResult[Any]]:
    """Run `plan` to its output (to await: not a coroutine of its own, one frame less per run).
    Any agentloop error leaves with the transcript and usage."""
    state = RunState(args.deps, plan.model, plan.agent_name)
    telemetry = _telemetry.active
    if telemetry is None:
        return _run(plan, args, state, sink)
    return _traced(telemetry, plan, args, state, sink)


async def _traced(
    telemetry: _telemetry.Telemetry,
    plan: RunPlan,
    args: RunArgs,
    state: RunState,
    sink: EventSink | None,
) -> RunResult[Any]:
    async with telemetry.run(plan, state):
        return await _run(plan, args, state, sink)


async def _run(
    plan: RunPlan, args: RunArgs, state: RunState, sink: EventSink | None
) -> RunResult[Any]:
    log = _log.bind(run_id=state.run_id, model=plan.model.name)
    log.info("run_start")
    if sink is not None:
        sink.attach(state.ctx)
    try:
        if plan.opens_toolsets:  # known when the agent was built
            result = await _with_toolsets(plan, args, state, sink)
        else:
            result = await _loop(plan, args, state, sink, None)
    except AgentloopError as exc:
        state.attach_to(exc)
        log.info("run_end", outcome=type(exc).__name__, requests=state.usage.requests)
        raise
    log.info("run_end", outcome="ok", requests=state.usage.requests, cost=result.cost)
    return result


async def _with_toolsets(
    plan: RunPlan, args: RunArgs, state: RunState, sink: EventSink | None
) -> RunResult[Any]:
    """`_loop` with a stack that holds the toolsets the run connects (the answering agent's, and
    those of each agent handed the run), closed when the run ends."""
    from contextlib import AsyncExitStack

    from .toolsets import only_error

    try:
        async with AsyncExitStack() as stack:
            return await _loop(plan, args, state, sink, stack)
    except BaseExceptionGroup as group:  # a toolset's task group wrapped the run's one error
        raise only_error(group) from None


async def _connect(
    plan: RunPlan, stack: AsyncExitStack | None
) -> tuple[RunPlan, RunToolsets | None]:
    """`plan` with its toolsets' tools, connected on `stack` (the plan as it is without any)."""
    if not plan.toolsets or stack is None:
        return plan, None
    from .toolsets import RunToolsets

    toolsets = RunToolsets(plan)
    return await toolsets.connect(stack), toolsets


async def _loop(
    plan: RunPlan,
    args: RunArgs,
    state: RunState,
    sink: EventSink | None,
    stack: AsyncExitStack | None,
) -> RunResult[Any]:
    limits = args.limits or plan.limits
    if args.resumed is not None:  # the agent answering when the run stopped answers on
        plan = _answering(plan, args.resumed.saved.agent)
    plan, toolsets = await _connect(plan, stack)
    counter = counter_for(plan.model)
    guard = LimitGuard(limits, plan.model.name, counter, provider=plan.model.system)
    telemetry = _telemetry.active
    if plan.uses_budget:
        state.give_budget(limits)
    seat = _Seat.of(plan, args, state, counter, toolsets)
    re_ask = False
    answer_now = False  # the last turn's calls all repeated earlier ones
    if args.resumed is None:
        state.extend(await initial_messages(plan, args, state.ctx, seat.step))
    else:
        answer_now = await _resume(seat, args.resumed, state, guard, sink)
    while True:
        toolsets = seat.toolsets
        if toolsets is not None and toolsets.changed:  # a server's tools changed: list again
            seat = _Seat.of(await toolsets.refresh(), args, state, seat.counter, toolsets)
        step = seat.step
        settings = step.answer_now(seat.settings) if answer_now else seat.settings
        pending = ModelRequest(tuple(state.messages), step.tools, settings, step.response_format)
        request = await seat.window.fit(pending)  # what is sent; the transcript keeps everything
        guard.before_request(state, request, counts_as_turn=not re_ask)
        state.turns += not re_ask
        sending = _send(seat.sender, request, sink, step)
        if telemetry is not None:
            sending = telemetry.chat(seat.plan.model, request, sending, sink is not None)
        answer = await sending
        answered = None
        if seat.lanes is not None:  # the model that answered, and its step, read the answer
            answered, step = seat.lanes.model, seat.lanes.step
        response = _canonical_names(answer, seat.known_to(step), state.run_id)
        state.add_response(response, answered)
        if sink is not None:
            await sink.on_turn(state.stats[-1], response)
        _log_request(state, response)
        guard.after_request(state, response)
        calls = response.message.tool_calls
        if _needs_tools(step, calls):
            _check_answerable(response)
            if seat.plan.defers_approvals:  # a call needing approval stops the run before it
                earlier = state.answered.answers
                waiting = needing_approval(calls, seat.plan.dispatch.tools, earlier)
                if waiting:
                    _telemetry.event("agentloop.approvals_pending", {"count": len(waiting)})
                    return state.paused(waiting)  # `Agent.resume` goes on
            answer_now = await _run_tools(seat.plan, state, guard, calls, sink)
            seat.settings = step.after_tool_turn(seat.settings)
            re_ask = False
            handed = state.take_handoff() if seat.plan.handoffs else None
            if handed is not None:  # another agent answers from now on
                target = seat.plan.handoffs[handed]
                seat = await _hand_over(target, args, state, guard, stack)
                if seat.plan.uses_budget and state.ctx.budget is None:
                    state.give_budget(limits)
                answer_now = False
            continue
        answer_now = False
        outcome = await step.read(response, state.ctx, state.ctx.retries)
        state.extend(outcome.messages)
        if isinstance(outcome, ReAsk):
            state.count_retry(OUTPUT_RETRIES)
            _telemetry.event(
                "agentloop.output_reask", {"retries": state.ctx.retries[OUTPUT_RETRIES]}
            )
            re_ask = True
            continue
        return state.result(outcome.value)


async def _resume(
    seat: _Seat, resumed: Resumed, state: RunState, guard: LimitGuard, sink: EventSink | None
) -> bool:
    """Restore the saved run and run the turn it stopped before, with the decisions."""
    plan = seat.plan
    state.restore(resumed.saved, plan.model)
    decided = dataclasses.replace(plan.dispatch, approver=resumed.decide)
    turn_plan = dataclasses.replace(plan, dispatch=decided)
    _log.info("run_resumed", run_id=state.run_id, approvals=dict(resumed.approvals))
    answer_now = await _run_tools(turn_plan, state, guard, resumed.saved.waiting_calls(), sink)
    seat.settings = seat.step.after_tool_turn(seat.settings)
    return answer_now


def _reachable(plan: RunPlan) -> Iterator[RunPlan]:
    """`plan`, and the plans it hands off to, at any depth (agents are immutable: no cycles)."""
    pending: list[RunPlan] = [plan]
    while pending:
        candidate = pending.pop()
        yield candidate
        pending.extend(h.target for h in candidate.handoffs.values())


def _answering(plan: RunPlan, name: str) -> RunPlan:
    """The plan of the agent named `name`: `plan`'s own, or one it hands off to (at any depth)."""
    for candidate in _reachable(plan):
        if candidate.agent_name == name:
            return candidate
    raise UsageError(f"the state was saved while agent {name!r} answered; this agent has no such")


@dataclass(slots=True)
class _Seat:
    """What the loop takes from the plan of the agent answering now (a handoff changes it)."""

    plan: RunPlan
    step: OutputStep
    counter: RequestCounter
    window: Window
    known: frozenset[str]
    settings: ModelSettings
    toolsets: RunToolsets | None  # the answering agent's, connected
    lanes: Lanes | None  # a `FallbackModel`'s requests, each built for its model

    @property
    def sender(self) -> Model:
        return self.lanes if self.lanes is not None else self.plan.model

    def known_to(self, step: OutputStep) -> frozenset[str]:
        """The tool names of `step` (another than the seat's when a fallback answered)."""
        return self.known if step is self.step else frozenset(t.name for t in step.tools)

    @classmethod
    def of(
        cls,
        plan: RunPlan,
        args: RunArgs,
        state: RunState,
        counter: RequestCounter,
        toolsets: RunToolsets | None = None,
    ) -> _Seat:
        model = plan.model
        step = plan.output_step(model.profile)
        window = Window(model, plan.history_policy, counter, state.account)
        known = frozenset(t.name for t in step.tools)
        settings = step.settings(plan.settings | args.settings)
        lanes = Lanes(plan, step, model) if isinstance(model, FallbackModel) else None
        return cls(plan, step, counter, window, known, settings, toolsets, lanes)


async def _hand_over(
    handoff: HandoffPlan,
    args: RunArgs,
    state: RunState,
    guard: LimitGuard,
    stack: AsyncExitStack | None,
) -> _Seat:
    """The target of `handoff` answers from now on: its instructions replace the first system
    message of the transcript (after the handoff's filter), its model, tools (its toolsets
    connected now, for the rest of the run) and output type take over; the run's limits hold."""
    target, toolsets = await _connect(handoff.target, stack)
    counter = counter_for(target.model)
    guard.use_model(target.model.name, counter, provider=target.model.system)
    seat = _Seat.of(target, args, state, counter, toolsets)
    messages = list(state.messages)
    if handoff.input_filter is not None:
        messages = list(handoff.input_filter(messages))
    messages = await with_instructions(target, state.ctx, seat.step, messages)
    _log.info("handoff", run_id=state.run_id, to=target.agent_name, model=target.model.name)
    _telemetry.event("agentloop.handoff", {"from": state.agent_name, "to": target.agent_name})
    state.hand_over(target.agent_name, target.model, messages)
    return seat


async def _run_tools(
    plan: RunPlan,
    state: RunState,
    guard: LimitGuard,
    calls: Sequence[ToolCall],
    sink: EventSink | None,
) -> bool:
    """Run a turn's tool calls; every call is answered in the transcript, whatever happens.
    True when every call repeated an earlier one (see `repeats`)."""
    keys = tuple(map(call_key, calls))  # compared by the repetition guard and for repeats
    try:
        guard.before_tools(keys)
    except UsageLimitExceeded:
        state.extend(guard.not_run(calls))
        raise
    notify = sink.on_tool if sink is not None else None
    earlier = state.answered.answers
    turn = ToolTurn(calls, plan.dispatch, state.ctx, state.ctx.retries, notify, earlier, keys)
    try:
        await turn.run()
    finally:
        outcome = turn.outcome()
        state.add_tool_outcome(outcome)
    return outcome.all_reused


def _canonical_names(response: ModelResponse, known: Collection[str], run_id: str) -> ModelResponse:
    """Tool calls under a name the model decorated (``functions.get_weather``) get the tool's
    own name, before the transcript keeps them; an exact or unmatched name stays as it is."""
    message = response.message
    if all(call.name in known for call in message.tool_calls):
        return response
    calls: list[ToolCall] = []
    for call in message.tool_calls:
        name = call.name if call.name in known else canonical_tool_name(call.name, known)
        if name is not None and name != call.name:
            _log.debug("tool_name_normalized", run_id=run_id, name=call.name, tool=name)
            call = dataclasses.replace(call, name=name)
        calls.append(call)
    return response.replace(message=dataclasses.replace(message, tool_calls=tuple(calls)))


def _needs_tools(step: OutputStep, calls: Sequence[ToolCall]) -> bool:
    """The model called tools (not only the output tool): run them and loop."""
    return bool(calls) and not step.has_output_call(calls)


def _check_answerable(response: ModelResponse) -> None:
    if response.message.refusal:
        raise RefusalError(
            f"the model refused: {response.message.refusal}", refusal=response.message.refusal
        )
    if response.finish_reason == "length":
        raise OutputTruncatedError("the model hit its token limit in the middle of its tool calls")


def _send(
    model: Model, request: ModelRequest, sink: EventSink | None, step: OutputStep
) -> Awaitable[ModelResponse]:
    """The request's answer, to await (not a coroutine of its own: one frame less per run)."""
    if sink is None:
        return model.request(request)
    return sink.stream_request(model, request, step)


def _log_request(state: RunState, response: ModelResponse) -> None:
    _log.info(
        "model_request",
        run_id=state.run_id,
        model=response.model,
        request=state.usage.requests,
        latency=response.latency,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        retries=response.retries,
    )
