"""Enforcing `Limits` inside the loop: before each request, after it, and before tools run.

The guard only decides: it reads the run's totals (`RunState`) and raises `UsageLimitExceeded`
naming the limit; it changes nothing of the run. Prompts are counted with the model's own
counter (the one the fit step uses, so a request is counted once).

A server that reports no usage (`RequestUsage.reported` False) must not make a token cap pass
by reporting nothing: when a token limit is set, such a request counts with an estimate (its
prompt and its answer's text through the model's counter), and a
warning ``usage_unreported`` is logged once per run. A cost cap then fails as an unknown cost
does (`UsageError`), since there is nothing sound to price.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import UsageError, UsageLimitExceeded
from .._limits import Limits
from .._log import get_logger
from .._messages import ModelRequest, ModelResponse, ToolCall, ToolMessage
from .repeats import CallKey

if TYPE_CHECKING:
    from .._wire.request_tokens import RequestCounter
    from .state import RunState

__all__ = ["LimitGuard", "estimate_tokens"]

_log = get_logger()


def estimate_tokens(request: ModelRequest) -> int:
    """A rough count of a request's prompt tokens (about four characters a token).

    Test models use it; the budget check counts with the model's `RequestCounter`.
    """
    chars = 0
    for message in request.messages:
        content: Any = getattr(message, "content", None)
        chars += 16 + (len(content) if isinstance(content, str) else len(str(content or "")))
        for call in getattr(message, "tool_calls", ()):
            chars += len(call.name) + len(call.arguments) + 16
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return chars // 4 + 3


def _exceeded(limit: str, value: float, observed: float, what: str) -> UsageLimitExceeded:
    message = f"{limit}={value} reached: {what} ({observed})"
    return UsageLimitExceeded(message, limit=limit, value=value, observed=observed)


class LimitGuard:
    """Decides, before and after each request and before tools run, whether a limit is passed."""

    __slots__ = (
        "_counter",
        "_estimated_input",
        "_estimated_output",
        "_last_call",
        "_limits",
        "_model",
        "_provider",
        "_repeats",
        "_request",
        "_warned",
    )

    def __init__(
        self,
        limits: Limits,
        model_name: str,
        counter: RequestCounter,
        provider: str | None = None,
    ) -> None:
        self._limits = limits
        self._model = model_name
        self._provider = provider  # the model's ``system``, for its price
        self._counter = counter
        self._last_call: tuple[str, str] | None = None
        self._repeats = 0
        self._request: ModelRequest | None = None
        self._estimated_input = 0  # tokens of the requests whose usage was not reported
        self._estimated_output = 0
        self._warned = False

    def use_model(
        self, model_name: str, counter: RequestCounter, provider: str | None = None
    ) -> None:
        """Count and price with another model from now on (a handoff's)."""
        self._model = model_name
        self._provider = provider
        self._counter = counter

    def before_request(
        self, state: RunState, request: ModelRequest, *, counts_as_turn: bool
    ) -> None:
        limits = self._limits
        if counts_as_turn and limits.max_turns is not None and state.turns >= limits.max_turns:
            raise _exceeded("max_turns", limits.max_turns, state.turns, "turns used")
        requests = state.usage.requests
        if limits.max_requests is not None and requests >= limits.max_requests:
            raise _exceeded("max_requests", limits.max_requests, requests, "requests sent")
        self._request = request
        spent = state.cost
        if limits.max_cost is not None and spent is not None:
            reserved = (request.settings.max_completion_tokens if request.settings else None) or 0
            prompt = self._counter.count(request).tokens
            estimate = state.meter.estimate(self._model, prompt, reserved, self._provider)
            if estimate is not None and spent + estimate > limits.max_cost:
                total = round(spent + estimate, 6)
                raise _exceeded("max_cost", limits.max_cost, total, "spent plus the next request")

    def after_request(self, state: RunState, response: ModelResponse) -> None:
        """Checked once the response is accounted (`RunState.add_response`)."""
        limits = self._limits
        capped = (limits.max_input_tokens, limits.max_output_tokens, limits.max_total_tokens)
        if not response.usage.reported and any(cap is not None for cap in capped):
            self._estimate_unreported(response)
        used_in = state.usage.input_tokens + self._estimated_input
        used_out = state.usage.output_tokens + self._estimated_output
        checks = (
            ("max_input_tokens", limits.max_input_tokens, used_in),
            ("max_output_tokens", limits.max_output_tokens, used_out),
            ("max_total_tokens", limits.max_total_tokens, used_in + used_out),
        )
        what = "tokens used"
        if self._warned:  # some requests were counted with estimates
            what += ", estimated where the server reported none"
        for name, value, observed in checks:
            if value is not None and observed > value:
                raise _exceeded(name, value, observed, what)
        if limits.max_cost is not None:
            self._check_cost(limits.max_cost, state.cost, response)

    def _check_cost(self, limit: float, spent: float | None, response: ModelResponse) -> None:
        if spent is None:
            if not response.usage.reported and response.usage.cost is None:
                raise UsageError(
                    f"max_cost is set but the cost of {self._model!r} is unknown: the server "
                    "reported no usage for the request"
                )
            raise UsageError(
                f"max_cost is set but the cost of {self._model!r} is unknown: the provider "
                "reported none and the catalog has no price; add one with register_model"
            )
        if spent > limit:
            raise _exceeded("max_cost", limit, round(spent, 6), "USD spent")

    def _estimate_unreported(self, response: ModelResponse) -> None:
        """Count a request the server reported no usage for with an estimate of its tokens."""
        if self._request is not None:
            self._estimated_input += self._counter.count(self._request).tokens
        message = response.message
        parts = [message.content or "", message.refusal or ""]
        parts += [v for v in message.reasoning.values() if isinstance(v, str)]
        parts += [call.name + call.arguments for call in message.tool_calls]
        self._estimated_output += self._counter.text("".join(parts))
        if not self._warned:
            self._warned = True
            _log.warning(
                "usage_unreported",
                model=self._model,
                detail="the server reported no token usage; token limits count estimates",
            )

    def before_tools(self, keys: Sequence[CallKey]) -> None:
        """The repetition guard: the same call too many times in a row ends the run (then
        `not_run` is what the calls are answered)."""
        limit = self._limits.max_repeated_calls
        if limit is None:
            return
        for key in keys:
            self._repeats = self._repeats + 1 if key == self._last_call else 1
            self._last_call = key
            if self._repeats > limit:
                raise _exceeded("max_repeated_calls", limit, self._repeats, f"calls of {key[0]!r}")

    def not_run(self, calls: Sequence[ToolCall]) -> list[ToolMessage]:
        """The answers to calls the repetition guard stopped."""
        name = self._last_call[0] if self._last_call is not None else "?"
        limit = self._limits.max_repeated_calls
        text = f"Not run: {name!r} was called with the same arguments {limit} times."
        return [ToolMessage(c.id, text, c.name, is_error=True) for c in calls]
