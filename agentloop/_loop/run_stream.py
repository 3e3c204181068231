"""`RunStream`: a streamed run, as an async context manager that owns its task group.

The run loop runs in a task of that group and emits events into a small memory channel; the
caller iterates the stream to receive them. The channel's buffer is bounded, so a slow consumer
slows the run down instead of making memory grow (backpressure). Leaving the ``async with`` early
cancels the run: the HTTP stream is closed at once, running tools are cancelled, and every tool
call id still gets an answer in `messages`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import UsageError
from .._events import (
    PartialOutput,
    RunEvent,
    RunFinished,
    StreamDelta,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from .._messages import Message, ModelRequest, ModelResponse, ToolCall, ToolMessage
from .._output import OUTPUT_TOOL_NAME
from .._result import RequestStats
from .._wire.models import deliver
from .dispatch import canonical_tool_name

if TYPE_CHECKING:
    from .._context import RunContext
    from .._partial import PartialParser
    from .._result import RunResult
    from .._wire.models import Model
    from .output_step import OutputStep
    from .plan import RunArgs, RunPlan

__all__ = ["RunStream"]

OutputT = TypeVar("OutputT")


class RunStream(Generic[OutputT]):
    """``async with agent.run_stream(prompt) as stream: async for event in stream: ...``

    After the iteration, `result` is the `RunResult` that `Agent.run` would have returned; an
    error that ended the run is raised from the iteration. `messages` is the live transcript.
    """

    def __init__(self, plan: RunPlan, args: RunArgs, *, buffer: int = 64) -> None:
        self._plan = plan
        self._args = args
        self._buffer = buffer
        self._result: RunResult[OutputT] | None = None
        self._error: BaseException | None = None
        self._ctx: RunContext[Any] | None = None
        self._partial: PartialParser | None = None
        self._output_index: int | None = None
        self._tool_mode = False
        self._tool_names: frozenset[str] = frozenset()
        self._tg: TaskGroup | None = None
        self._send: MemoryObjectSendStream[RunEvent] | None = None
        self._receive: MemoryObjectReceiveStream[RunEvent] | None = None

    @property
    def result(self) -> RunResult[OutputT]:
        if self._result is None:
            raise UsageError("the run has not finished: iterate the stream to its end first")
        return self._result

    @property
    def messages(self) -> list[Message]:
        return list(self._ctx.messages) if self._ctx is not None else []

    async def __aenter__(self) -> RunStream[OutputT]:
        self._send, self._receive = anyio.create_memory_object_stream[RunEvent](self._buffer)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._produce)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._tg is not None and self._receive is not None
        self._tg.cancel_scope.cancel()
        try:
            # The producer never raises (it keeps its error for the iteration), so the group has
            # nothing to report; an exception leaving the block (the run's error re-raised by
            # `__anext__`, or the caller's own) propagates as it is, never wrapped in a group.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._receive.close()
        return None

    def __aiter__(self) -> RunStream[OutputT]:
        return self

    async def __anext__(self) -> RunEvent:
        receive = self._receive
        if receive is None:
            raise UsageError("use `async with agent.run_stream(...) as stream` before iterating")
        try:
            # A buffered event is taken without a trip through the event loop (one per delta
            # otherwise); the wait for the next one is a checkpoint as before.
            try:
                return receive.receive_nowait()
            except anyio.WouldBlock:
                return await receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            error = self._error
            if error is not None:
                raise error from error.__cause__  # keep the cause (an httpx error, say)
            raise StopAsyncIteration from None

    async def _produce(self) -> None:
        from .loop import run_loop

        assert self._send is not None
        async with self._send:
            try:
                result = await run_loop(self._plan, self._args, self)
            except Exception as exc:
                self._error = exc
                return
            self._result = result
            await self._send.send(RunFinished(result))

    # --- the EventSink the loop calls ---------------------------------------------------------

    def attach(self, ctx: RunContext[Any]) -> None:
        self._ctx = ctx

    async def stream_request(
        self, model: Model, request: ModelRequest, step: OutputStep
    ) -> ModelResponse:
        assert self._send is not None
        self._start_partial(step)
        async with model.stream(request) as deltas:
            response = await deliver(deltas, self._on_delta)
        if self._partial is not None and (self._output_index is not None or not self._tool_mode):
            final = self._partial.flush()  # the whole text: the last partial is complete
            if final is not None:
                await self._send.send(PartialOutput(final))
        return response

    async def on_turn(self, stats: RequestStats, response: ModelResponse) -> None:
        assert self._send is not None
        agent = self._ctx.agent if self._ctx is not None else "agent"
        await self._send.send(TurnFinished(stats, response, agent))

    async def _on_delta(self, delta: StreamDelta) -> None:
        await self._emit(delta)
        partial = self._feed_partial(delta)
        if partial is not None:
            await self._emit(PartialOutput(partial))

    async def _emit(self, event: RunEvent) -> None:
        """Send without a checkpoint while the buffer has room (reading the HTTP stream is one);
        wait for room otherwise (backpressure)."""
        assert self._send is not None
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            await self._send.send(event)

    async def on_tool(self, call: ToolCall, answer: ToolMessage, duration: float) -> None:
        assert self._send is not None
        agent = self._ctx.agent if self._ctx is not None else "agent"
        event = ToolCallFinished(
            call.id, call.name, answer.content, answer.is_error, duration, agent
        )
        await self._send.send(event)

    def _start_partial(self, step: OutputStep) -> None:
        self._output_index = None
        self._partial = None
        if not step.spec.is_text:
            from .._partial import PartialParser

            self._partial = PartialParser(step.spec.output_type, wrapped=step.spec.wrapped)
            self._tool_mode = step.mode == "tool"
            self._tool_names = frozenset(t.name for t in step.tools)

    def _feed_partial(self, delta: StreamDelta) -> Any | None:
        if self._partial is None:
            return None

        if self._tool_mode:
            if isinstance(delta, ToolCallStarted) and self._is_output_tool(delta.name):
                self._output_index = delta.index
            if isinstance(delta, ToolArgumentsDelta) and delta.index == self._output_index:
                return self._partial.feed(delta.text)
            return None
        return self._partial.feed(delta.text) if isinstance(delta, TextDelta) else None

    def _is_output_tool(self, name: str) -> bool:
        """The output tool's name, or a decoration of it that the loop will read as it."""
        if name in self._tool_names:
            return name == OUTPUT_TOOL_NAME
        return canonical_tool_name(name, self._tool_names) == OUTPUT_TOOL_NAME
