"""What a server drops without a word: the tools, or the tool results, of a request.

A chat template with no place for tools (llama.cpp's server with a model whose template has
none) or for ``role: "tool"`` messages (llama-cpp-python's function-calling template) renders a
prompt without them and answers 200: the model never sees its tools or what its calls returned.
The server's own token count gives it away: the prompt costs as many tokens with them as
without. `SilentDrops` asks once per learning model, with one-token requests:

- after a non-stream answer (`after`): the tools, when the first answer to a request with tools
  called none (one request without the tools); the results, on the first request that carries
  some (one request with them made longer). A found drop means the request is sent again.
- before a stream (`before`), whose deltas cannot be taken back: the same, both sides asked.

A drop is only concluded when a control shows the server's counts follow its prompts (a longer
user message costs more): a server that reports the same usage for everything shows nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from .._messages import (
    Message,
    ModelRequest,
    ModelResponse,
    RequestUsage,
    ToolMessage,
    UserMessage,
)
from .._settings import ModelSettings
from .profiles import ModelProfile

__all__ = ["Drop", "SilentDrops"]

Send = Callable[[ModelRequest], Awaitable[ModelResponse]]
Drop = tuple[str, dict[str, Any]]
"""A feature the server drops, and the profile changes that route around it."""
_TOOLS: Drop = ("tools", {"tool_mode": "prompted"})
_RESULTS: Drop = ("tool_results", {"tool_results_as_text": True})
_PADDING = " (checked)" * 20


def _one_token(
    request: ModelRequest,
    messages: tuple[Message, ...] | None = None,
    tools: tuple[Any, ...] | None = None,
) -> ModelRequest:
    settings = (request.settings or ModelSettings()) | ModelSettings(max_completion_tokens=1)
    return dataclasses.replace(
        request,
        messages=tuple(request.messages) if messages is None else messages,
        tools=tuple(request.tools) if tools is None else tools,
        settings=settings,
    )


def _padded(request: ModelRequest) -> tuple[Message, ...]:
    return tuple(
        dataclasses.replace(m, content=m.content + _PADDING) if isinstance(m, ToolMessage) else m
        for m in request.messages
    )


def _user_padded(request: ModelRequest) -> tuple[Message, ...] | None:
    """The messages with the last user text made longer (None if there is no such text)."""
    messages = list(request.messages)
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, UserMessage) and isinstance(message.content, str):
            messages[index] = dataclasses.replace(message, content=message.content + _PADDING)
            return tuple(messages)
    return None


async def _counts_move(send: Send, request: ModelRequest, reference: RequestUsage) -> bool:
    """A control: does the server's prompt count grow with a longer user message? A server (or
    a fake) that reports the same count whatever it is sent shows nothing either way."""
    longer = _user_padded(request)
    if longer is None:
        return False
    return not _no_larger((await send(_one_token(request, messages=longer))).usage, reference)


def _no_larger(bigger: RequestUsage, smaller: RequestUsage) -> bool:
    """`bigger` was meant to cost more prompt tokens than `smaller`, yet did not."""
    known = bigger.reported and smaller.reported and smaller.input_tokens > 0
    return known and bigger.input_tokens <= smaller.input_tokens


class SilentDrops:
    """The checks of one learning model; each runs at most once."""

    def __init__(self) -> None:
        self._done: set[str] = set()

    def _due(self, name: str, request: ModelRequest, profile: ModelProfile) -> bool:
        if name in self._done or not request.tools or profile.tool_mode != "native":
            return False
        if name == "results":
            has = any(isinstance(m, ToolMessage) for m in request.messages)
            return has and not profile.tool_results_as_text
        return True

    async def after(
        self, send: Send, request: ModelRequest, response: ModelResponse, profile: ModelProfile
    ) -> Drop | None:
        """The drop `response` (to `request`) shows, if any; None when the checks are done."""
        usage = response.usage
        if self._due("tools", request, profile):
            self._done.add("tools")
            if not response.message.tool_calls and usage.reported:  # a call shows they were seen
                plain = (await send(_one_token(request, tools=()))).usage
                if _no_larger(usage, plain) and await _counts_move(send, request, usage):
                    return _TOOLS
        if self._due("results", request, profile) and usage.reported:
            self._done.add("results")
            padded = (await send(_one_token(request, messages=_padded(request)))).usage
            if _no_larger(padded, usage) and await _counts_move(send, request, usage):
                return _RESULTS
        return None

    async def before(self, send: Send, request: ModelRequest, profile: ModelProfile) -> Drop | None:
        """The drop a stream of `request` would meet, asked before it is sent."""
        if self._due("tools", request, profile):
            self._done.add("tools")
            offered = (await send(_one_token(request))).usage
            plain = (await send(_one_token(request, tools=()))).usage
            if _no_larger(offered, plain) and await _counts_move(send, request, offered):
                return _TOOLS
        if self._due("results", request, profile):
            self._done.add("results")
            plain = (await send(_one_token(request))).usage
            padded = (await send(_one_token(request, messages=_padded(request)))).usage
            if _no_larger(padded, plain) and await _counts_move(send, request, plain):
                return _RESULTS
        return None
