"""The prompt tokens of a model's requests, counted without building their bodies each time.

A run asks its model for a `RequestCounter` (`counter_for`): a model may supply its own (a
``token_counter()`` method, for a server with a tokenizer endpoint, say); the default counts with
the model's tokenizer (`agentloop._wire.tokens`) and its current profile. Each message is put in
wire form and counted once, and remembered while it is still sent; the rest of a body (tool
definitions, response format, the server's own tool prompt) is counted once per tool set and
format. The fit step and the limit guard share one counter, so a turn counts its request once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .._messages import Message, ModelRequest, ResponseFormat, ToolDefinition, UserMessage
from .request import build_body, message_to_wire
from .tokens import TokenCount, Tokenizer, tokenizer_for

if TYPE_CHECKING:
    from .profiles import ModelProfile

__all__ = ["CountedModel", "RequestCounter", "counter_for"]


class CountedModel(Protocol):
    """What the default counter needs of a model."""

    @property
    def name(self) -> str: ...

    @property
    def profile(self) -> ModelProfile: ...


_Shape = tuple["Sequence[ToolDefinition]", "ResponseFormat | None", "ModelProfile"]


class RequestCounter:
    """Counts the prompt tokens of one run's requests to one model (see the module)."""

    __slots__ = ("_messages", "_model", "_shapes")

    def __init__(self, model: CountedModel) -> None:
        self._model = model
        self._messages: dict[int, tuple[Message, int]] = {}
        self._shapes: list[tuple[_Shape, int]] = []

    @property
    def tokenizer(self) -> Tokenizer:
        return tokenizer_for(self._model.name)  # cached per model name

    @property
    def exact(self) -> bool:
        return self.tokenizer.exact

    def text(self, text: str) -> int:
        return self.tokenizer.text(text)

    def count(self, request: ModelRequest) -> TokenCount:
        """The prompt tokens of `request` as sent to the model."""
        return TokenCount(self.counter(request)(request.messages), self.exact)

    def counter(self, request: ModelRequest) -> Callable[[Sequence[Message]], int]:
        """Counts `request` with other messages in place of its own (for the history policy)."""
        overhead = self._overhead(request)
        message = self._message
        return lambda messages: overhead + sum(message(m) for m in messages)

    def keep_only(self, messages: Sequence[Message]) -> None:
        """Forget the counts of messages no longer sent (copies made by earlier fits)."""
        current = {id(m) for m in messages}
        self._messages = {k: v for k, v in self._messages.items() if k in current}

    def _message(self, message: Message) -> int:
        hit = self._messages.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        tokens = self.tokenizer.message(message_to_wire(message, self._model.profile))
        self._messages[id(message)] = (message, tokens)
        return tokens

    def _overhead(self, request: ModelRequest) -> int:
        profile = self._model.profile
        for (tools, response_format, seen), tokens in self._shapes:
            if (
                tools is request.tools
                and response_format is request.response_format
                and seen is profile
            ):
                return tokens
        empty = dataclasses.replace(request, messages=(UserMessage(""),))
        body = build_body(self._model.name, profile, empty, stream=False)
        tokens = self.tokenizer.overhead(body)
        if request.tools and profile.tool_mode == "native":  # the server's own tool prompt
            tokens += profile.tool_prompt_tokens + profile.tokens_per_tool * len(request.tools)
        self._shapes = [
            *self._shapes[-3:],
            ((request.tools, request.response_format, profile), tokens),
        ]
        return tokens


def counter_for(model: CountedModel) -> RequestCounter:
    """The model's own counter if it supplies one (``model.token_counter()``), else the default."""
    supplied: Callable[[], RequestCounter] | None = getattr(model, "token_counter", None)
    return supplied() if supplied is not None else RequestCounter(model)
