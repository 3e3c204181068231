"""The fit step of a run: each request counted, and shortened by the history policy if needed.

Before every request the run counts the prompt (the model's token counter). When prompt plus
reserved output would pass the model's context window (from the catalog, `lookup_model`), the
agent's history policy (`agentloop._history_policy`) shortens what is *sent*; the transcript
(`RunResult.messages`) always keeps everything. If the result still does not fit,
`ContextWindowError` is raised before anything is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ContextWindowError
from .._history_policy import HistoryPolicy, WindowBudget, apply_policy, check_policy_result
from .._log import get_logger
from .._messages import Message, ModelRequest, UserMessage
from .._prices import lookup_model
from .._wire.request import build_body, message_to_wire
from .._wire.tokens import Tokenizer, tokenizer_for

if TYPE_CHECKING:
    from .._context import RunContext
    from .._prices import CostMeter
    from .._wire.models import Model

__all__ = ["Window", "reserved_output"]

_log = get_logger()


def reserved_output(request: ModelRequest, context: int, max_output: int | None) -> int:
    """Output tokens kept free: the request's cap, else the catalog's, at most a quarter."""
    asked = request.settings.max_completion_tokens if request.settings is not None else None
    if asked is not None:
        return asked
    return min(max_output or context, context // 4)


class Window:
    """The fit step of one run: counts each request and applies the history policy."""

    def __init__(
        self,
        model: Model,
        policy: HistoryPolicy | None,
        ctx: RunContext[Any] | None = None,
        meter: CostMeter | None = None,
    ) -> None:
        info = lookup_model(model.name)
        self.context = info.context if info is not None else None
        self.max_output = info.max_output if info is not None else None
        self._model = model
        self._policy = policy
        self._ctx = ctx
        self._meter = meter
        self._cache: dict[int, tuple[Message, int]] = {}

    @property
    def _tokenizer(self) -> Tokenizer:
        return tokenizer_for(self._model.name)  # cached; loaded only for models with a window

    def _message_tokens(self, message: Message) -> int:
        hit = self._cache.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        tokens = self._tokenizer.message(message_to_wire(message, self._model.profile))
        self._cache[id(message)] = (message, tokens)
        return tokens

    def _counter(self, request: ModelRequest) -> Callable[[Sequence[Message]], int]:
        empty = dataclasses.replace(request, messages=(UserMessage(""),))
        profile = self._model.profile
        body = build_body(self._model.name, profile, empty, stream=False)
        overhead = self._tokenizer.overhead(body)
        if request.tools and profile.tool_mode == "native":  # the server's own tool prompt
            overhead += profile.tool_prompt_tokens + profile.tokens_per_tool * len(request.tools)
        return lambda messages: overhead + sum(self._message_tokens(m) for m in messages)

    async def fit(self, request: ModelRequest) -> ModelRequest:
        """`request` if it fits, else its messages shortened by the policy; or raise."""
        if self.context is None:
            return request  # the catalog does not know this model's window
        current = {id(m) for m in request.messages}  # forget copies made by earlier fits
        self._cache = {k: v for k, v in self._cache.items() if k in current}
        reserved = reserved_output(request, self.context, self.max_output)
        counter = self._counter(request)
        budget = WindowBudget(
            self.context - reserved,
            self.context,
            reserved,
            counter,
            self._tokenizer.text,
            self._ask,
        )
        messages = list(request.messages)
        before = counter(messages)
        if before <= budget.limit:
            return request
        if self._policy is not None:
            fitted = await apply_policy(self._policy, messages, budget)
            check_policy_result(messages, fitted)
        else:
            fitted = messages
        after = counter(fitted)
        if after > budget.limit:
            raise self._error(after, budget)
        _log.info(
            "context_fitted",
            model=self._model.name,
            tokens_before=before,
            tokens_after=after,
            limit=budget.limit,
            messages_before=len(messages),
            messages_after=len(fitted),
        )
        return dataclasses.replace(request, messages=tuple(fitted))

    def _error(self, tokens: int, budget: WindowBudget) -> ContextWindowError:
        how = "after the history policy" if self._policy is not None else "(no history policy)"
        estimate = "" if self._tokenizer.exact else " (estimated)"
        return ContextWindowError(
            f"the request does not fit {self._model.name}'s context window {how}: "
            f"{tokens} prompt tokens{estimate} + {budget.reserved_output} reserved for output "
            f"> {budget.context}",
            prompt_tokens=tokens,
            limit=budget.limit,
            context=budget.context,
        )

    async def _ask(self, messages: Sequence[Message], max_tokens: int) -> str:
        from .._settings import ModelSettings

        settings = ModelSettings(max_completion_tokens=max_tokens)
        response = await self._model.request(ModelRequest(tuple(messages), (), settings))
        if self._ctx is not None:
            self._ctx.usage.add_request(response.usage, retries=response.retries)
        if self._meter is not None:
            self._meter.add(self._model.name, response.usage)
        return response.message.content or ""
