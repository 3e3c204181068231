"""The output stage of the loop: read a final answer, or say what to re-ask.

`OutputStep` is built once per (run plan, profile): the tools and response_format to send, the
settings to force the output tool, and `read`, which turns a response without tool calls (or with
the output tool's call) into a final value or a re-ask. It reads the run's retry counts and never
changes them: a `ReAsk` is the loop's to count (`OUTPUT_RETRIES` is its key).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import (
    OutputTruncatedError,
    OutputValidationError,
    RefusalError,
    ToolRetry,
    UsageError,
)
from .._log import get_logger
from .._messages import (
    Message,
    ModelResponse,
    ResponseFormat,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from .._output import OUTPUT_TOOL_NAME, OutputInvalid, OutputSpec
from .._settings import ModelSettings
from .._wire.profiles import ModelProfile, OutputMode

if TYPE_CHECKING:
    from .._context import RunContext
    from .plan import RunPlan

__all__ = ["OUTPUT_RETRIES", "Final", "OutputStep", "ReAsk"]

OUTPUT_RETRIES = "output"
"""The key of the output's re-asks in the run's retry counts (`RunContext.retries`)."""
_log = get_logger()
_FORCED = ("required",)


@dataclass(frozen=True, slots=True)
class Final:
    """The run's output; `messages` answer the output tool's call (tool mode)."""

    value: Any
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class ReAsk:
    """The output was invalid: append `messages` and ask again."""

    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class OutputStep:
    spec: OutputSpec
    mode: OutputMode
    tools: tuple[ToolDefinition, ...]
    response_format: ResponseFormat | None
    instructions: str | None
    force_output_tool: bool
    validators: tuple[Any, ...]
    retries: int

    @classmethod
    def build(cls, plan: RunPlan, profile: ModelProfile) -> OutputStep:
        """The step for `plan` on a server with `profile` (`RunPlan.output_step` memoizes it)."""
        output = plan.output
        spec = output.spec
        strict = output.strict if profile.strict_tools else False
        tools = tuple(
            t if profile.strict_tools else dataclasses.replace(t, strict=False)
            for t in plan.tool_definitions
        )
        args: tuple[tuple[Any, ...], int] = (output.validators, output.retries)
        if spec.is_text:
            return cls(spec, "native", tools, None, None, False, *args)
        mode = spec.mode_for(profile, output.mode)
        if mode == "tool":
            _check_reserved(plan.dispatch.tools)
            hint = f"When you have the final answer, call the `{OUTPUT_TOOL_NAME}` tool with it."
            tools = (*tools, spec.tool_definition(strict))
            return cls(spec, mode, tools, None, hint, profile.tool_choice_required, *args)
        if mode == "native" and profile.response_format != "none":
            strict_ok = strict if profile.response_format == "json_schema" else False
            response_format = spec.response_format(strict_ok)
            # A server that takes no schema is told it in the prompt by the request builder.
            return cls(spec, mode, tools, response_format, None, False, *args)
        return cls(spec, "prompted", tools, None, spec.prompt(), False, *args)

    def settings(self, base: ModelSettings) -> ModelSettings:
        """The first request's settings: in tool mode, force a tool call where the server can."""
        if self.force_output_tool and base.tool_choice is None:
            return dataclasses.replace(base, tool_choice="required")
        return base

    def after_tool_turn(self, settings: ModelSettings) -> ModelSettings:
        """After tools ran, a tool forced by the user is no longer forced (so it cannot loop)."""
        choice = settings.tool_choice
        if choice is None or choice in ("auto", "none") or self.force_output_tool:
            return settings
        return dataclasses.replace(settings, tool_choice="auto")

    def answer_now(self, settings: ModelSettings) -> ModelSettings:
        """One request's settings that ask for the answer, not more tools: the output tool
        (tool mode), or no tool at all. Sent after a turn whose calls all repeated earlier ones."""
        choice = OUTPUT_TOOL_NAME if self.mode == "tool" else "none"
        return dataclasses.replace(settings, tool_choice=choice)

    def has_output_call(self, calls: Sequence[ToolCall]) -> bool:
        return self.mode == "tool" and any(c.name == OUTPUT_TOOL_NAME for c in calls)

    async def read(
        self, response: ModelResponse, ctx: RunContext[Any], retries: Mapping[str, int]
    ) -> Final | ReAsk:
        """A response with no tool to run: the final value, or a re-ask; raises when hopeless."""
        message = response.message
        if message.refusal and not message.tool_calls:
            raise RefusalError(f"the model refused: {message.refusal}", refusal=message.refusal)
        if response.finish_reason == "length" and not self.spec.is_text:
            raise OutputTruncatedError(
                "the model stopped at its token limit before the structured output was complete; "
                "raise max_completion_tokens or ask for less"
            )
        if self.mode == "tool" and not self.spec.is_text:
            return await self._read_tool_call(message.tool_calls, message.content, ctx, retries)
        try:
            value = await self._validate(self.spec.parse_text(message.content), ctx)
        except ToolRetry as error:
            return self._re_ask(error, message.content, ctx, retries, (_reask_message(error),))
        return Final(value)

    async def _read_tool_call(
        self,
        calls: Sequence[ToolCall],
        content: str | None,
        ctx: RunContext[Any],
        retries: Mapping[str, int],
    ) -> Final | ReAsk:
        final = next((c for c in calls if c.name == OUTPUT_TOOL_NAME), None)
        if final is None:
            return await self._read_untooled(content, ctx, retries)
        skipped = tuple(
            ToolMessage(c.id, "Not run: the final result was already given.", c.name)
            for c in calls
            if c is not final
        )
        try:
            value = await self._validate(self.spec.parse_json(final.arguments), ctx)
        except ToolRetry as error:
            answer = ToolMessage(final.id, _reask_text(error), final.name, is_error=True)
            return self._re_ask(error, final.arguments, ctx, retries, (answer, *skipped))
        return Final(value, (ToolMessage(final.id, "Final result accepted.", final.name), *skipped))

    async def _read_untooled(
        self, content: str | None, ctx: RunContext[Any], retries: Mapping[str, int]
    ) -> Final | ReAsk:
        """No output-tool call. Where the tool is not forced, an answer whose text is valid JSON
        output is taken (small models answer so); anything else is asked to call the tool."""
        ask = OutputInvalid(f"Call the `{OUTPUT_TOOL_NAME}` tool to give the final answer.")
        if self.force_output_tool or not content or not content.strip():
            return self._re_ask(ask, content, ctx, retries, (_reask_message(ask),))
        try:
            value = self.spec.parse_text(content)
        except ToolRetry:
            return self._re_ask(ask, content, ctx, retries, (_reask_message(ask),))
        try:
            value = await self._validate(value, ctx)
        except ToolRetry as error:  # an output validator's objection, with the tool hint
            error = OutputInvalid(f"{error.message}\n{ask.message}")
            return self._re_ask(error, content, ctx, retries, (_reask_message(error),))
        _log.debug("output_from_text", run_id=ctx.run_id, mode=self.mode)
        return Final(value)

    async def _validate(self, value: Any, ctx: RunContext[Any]) -> Any:
        for validator in self.validators:
            takes_ctx = len(inspect.signature(validator).parameters) >= 2
            result = validator(ctx, value) if takes_ctx else validator(value)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                value = result
        return value

    def _re_ask(
        self,
        error: ToolRetry,
        raw: str | None,
        ctx: RunContext[Any],
        retries: Mapping[str, int],
        messages: tuple[Message, ...],
    ) -> ReAsk:
        used = retries.get(OUTPUT_RETRIES, 0) + 1
        if used > self.retries:
            raise OutputValidationError(
                f"the output stayed invalid after {self.retries} re-asks: {error.message}",
                errors=error.message,
                raw=raw,
            )
        _log.info("output_retry", run_id=ctx.run_id, attempt=used, reason=error.message[:500])
        return ReAsk(messages)


def _check_reserved(tools: Mapping[str, object]) -> None:
    if OUTPUT_TOOL_NAME in tools:
        raise UsageError(
            f"the tool name {OUTPUT_TOOL_NAME!r} is reserved for the output in output_mode 'tool' "
            "(the mode this model's profile gives); rename the tool or pick another output_mode"
        )


def _reask_text(error: ToolRetry) -> str:
    return f"{error.message}\nFix the errors and try again."


def _reask_message(error: ToolRetry) -> UserMessage:
    return UserMessage(_reask_text(error))
