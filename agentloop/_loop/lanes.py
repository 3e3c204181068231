"""The requests of a `FallbackModel`: each model gets the one its own profile calls for.

The loop builds each request for the first model, with the output step of its profile. A model
further down the list may take another output mode (a server that ignores ``response_format``
gets the schema in its instructions, or the output tool), so `Lanes.adapt` rebuilds the request
with that model's step: its tools, response format, instructions and forced tool. `Lanes` is a
`Model` to the rest of the loop, and remembers which model it asked last: after a request, that
is the one that answered, and its step reads the answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from .._messages import Message, ModelRequest, ModelResponse, SystemMessage
from .._output import OUTPUT_TOOL_NAME

if TYPE_CHECKING:
    from .._wire.fallback import FallbackModel
    from .._wire.models import Model, ModelStream
    from .._wire.profiles import ModelProfile
    from .output_step import OutputStep
    from .plan import RunPlan

__all__ = ["Lanes", "for_step"]


class Lanes:
    """A `FallbackModel` as the loop sends to it (see the module). One per run and agent."""

    __slots__ = ("_base", "_fallback", "_plan", "model", "step")

    def __init__(self, plan: RunPlan, base: OutputStep, fallback: FallbackModel) -> None:
        self._plan = plan
        self._base = base
        self._fallback = fallback
        self.model: Model = fallback.models[0]
        self.step: OutputStep = base
        """The model asked last, and its step: after a request, the one that answered."""

    @property
    def name(self) -> str:
        return self._fallback.name

    @property
    def profile(self) -> ModelProfile:
        return self._fallback.profile

    @property
    def system(self) -> str:
        return self._fallback.system

    def adapt(self, model: Model, request: ModelRequest) -> ModelRequest:
        step = self._plan.output_step(model.profile)
        self.model, self.step = model, step
        return request if step is self._base else for_step(request, self._base, step)

    async def request(self, request: ModelRequest) -> ModelResponse:
        return await self._fallback.request(request, adapt=self.adapt)

    def stream(self, request: ModelRequest) -> AbstractAsyncContextManager[ModelStream]:
        return self._fallback.stream(request, adapt=self.adapt)

    async def aclose(self) -> None:
        await self._fallback.aclose()


def for_step(request: ModelRequest, base: OutputStep, step: OutputStep) -> ModelRequest:
    """`request`, built with `base`, as `step` would have built it."""
    settings = request.settings
    if settings is not None:
        choice = settings.tool_choice
        if choice == OUTPUT_TOOL_NAME or (choice == "none" and base.mode != "tool"):
            settings = step.answer_now(settings)  # the turn after repeated calls
        elif base.force_output_tool and choice == "required" and not step.force_output_tool:
            settings = dataclasses.replace(settings, tool_choice=None)
        else:
            settings = step.settings(settings)
    messages = _instructions(request.messages, base.instructions, step.instructions)
    return ModelRequest(messages, step.tools, settings, step.response_format)


def _instructions(
    messages: Sequence[Message], old: str | None, new: str | None
) -> Sequence[Message]:
    """The first system message with `old` (the output instructions it ends with) replaced by
    `new`."""
    if old == new:
        return messages
    first = messages[0] if messages else None
    if not isinstance(first, SystemMessage):
        return [SystemMessage(new), *messages] if new else messages
    text = first.content
    if old and text == old:
        text = ""
    elif old and text.endswith("\n\n" + old):
        text = text[: -len(old) - 2]
    text = "\n\n".join(p for p in (text, new) if p)
    head = [dataclasses.replace(first, content=text)] if text else []
    return [*head, *messages[1:]]
