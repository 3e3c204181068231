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
from typing import TYPE_CHECKING

from .. import _telemetry
from .._errors import ContextWindowError
from .._history_policy import HistoryPolicy, WindowBudget, apply_policy, check_policy_result
from .._log import get_logger
from .._messages import Message, ModelRequest, ModelResponse
from .._prices import lookup_model
from .._settings import ModelSettings

if TYPE_CHECKING:
    from .._wire.models import Model
    from .._wire.request_tokens import RequestCounter

__all__ = ["Window", "reserved_output"]

_log = get_logger()
Account = Callable[[ModelResponse], object]


def reserved_output(request: ModelRequest, context: int, max_output: int | None) -> int:
    """Output tokens kept free: the request's cap, else the catalog's, at most a quarter."""
    asked = request.settings.max_completion_tokens if request.settings is not None else None
    if asked is not None:
        return asked
    return min(max_output or context, context // 4)


class Window:
    """The fit step of one run: counts each request and applies the history policy.

    A policy's own requests to the model (``budget.ask``) are handed to `account`, the run
    state's, so that their usage and cost count toward the run.
    """

    def __init__(
        self,
        model: Model,
        policy: HistoryPolicy | None,
        counter: RequestCounter,
        account: Account | None = None,
    ) -> None:
        info = lookup_model(model.name, model.system)
        self.context = info.context if info is not None else None
        self.max_output = info.max_output if info is not None else None
        self._model = model
        self._policy = policy
        self._counter = counter
        self._account = account

    async def fit(self, request: ModelRequest) -> ModelRequest:
        """`request` if it fits, else its messages shortened by the policy; or raise."""
        if self.context is None:
            return request  # the catalog does not know this model's window
        self._counter.keep_only(request.messages)
        reserved = reserved_output(request, self.context, self.max_output)
        counter = self._counter.counter(request)
        budget = WindowBudget(
            self.context - reserved, self.context, reserved, counter, self._counter.text, self._ask
        )
        messages = list(request.messages)
        before = counter(messages)
        if before <= budget.limit:
            return request
        fitted = await self._shorten(messages, budget)
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

    async def _shorten(self, messages: list[Message], budget: WindowBudget) -> list[Message]:
        if self._policy is None:
            return messages
        fitted = await apply_policy(self._policy, messages, budget)
        check_policy_result(messages, fitted)
        return fitted

    def _error(self, tokens: int, budget: WindowBudget) -> ContextWindowError:
        how = "after the history policy" if self._policy is not None else "(no history policy)"
        estimate = "" if self._counter.exact else " (estimated)"
        return ContextWindowError(
            f"the request does not fit {self._model.name}'s context window {how}: "
            f"{tokens} prompt tokens{estimate} + {budget.reserved_output} reserved for output "
            f"> {budget.context}",
            prompt_tokens=tokens,
            limit=budget.limit,
            context=budget.context,
        )

    async def _ask(self, messages: Sequence[Message], max_tokens: int) -> str:
        request = ModelRequest(tuple(messages), (), ModelSettings(max_completion_tokens=max_tokens))
        telemetry = _telemetry.active
        sending = self._model.request(request)
        if telemetry is not None:  # the summary is a request of the run like any other
            sending = telemetry.chat(self._model, request, sending, False)
        response = await sending
        if self._account is not None:
            self._account(response)
        return response.message.content or ""
