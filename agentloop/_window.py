"""Fitting each request into the model's context window: history policies and the fit step.

Before every request the run counts the prompt (`_tokens.py`). When prompt plus reserved output
would pass the model's context window (from the catalog, `lookup_model`), the agent's history
policy shortens what is *sent*; the transcript (`RunResult.messages`) always keeps everything.
If the result still does not fit, `ContextWindowError` is raised before anything is sent.

A policy is a small callable ``policy(messages, budget) -> messages`` (sync or async). It gets a
copy of the messages about to be sent and a `WindowBudget` (the token limit, a counter, and
``ask`` to query the agent's model), and returns the messages to send. Whatever it returns must
keep every system message, the latest user message, and each assistant tool call together with
its results; the fit step checks this and raises `UsageError` for a policy that breaks it.
Policies compose with `chain`; the default chain truncates large tool results, then drops the
oldest messages. They only run when the request would not fit anyway (that request would be
rejected), so they never change a run that fits.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ContextWindowError, UsageError
from ._log import get_logger
from ._messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from ._prices import lookup_model
from ._request import build_body, message_to_wire
from ._tokens import Tokenizer, tokenizer_for

if TYPE_CHECKING:
    from ._context import RunContext
    from ._models import Model
    from ._prices import CostMeter

__all__ = [
    "DEFAULT_HISTORY_POLICY",
    "HistoryPolicy",
    "Window",
    "WindowBudget",
    "chain",
    "drop_oldest",
    "history_units",
    "pinned_indices",
    "reserved_output",
    "truncate_tool_results",
]

_log = get_logger()

Ask = Callable[[Sequence[Message], int], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class WindowBudget:
    """What a history policy works with.

    `limit` is the prompt tokens that may be sent: the context window minus `reserved_output`.
    `count(messages)` is the prompt of the pending request with these messages instead (tools and
    response format included). `ask(messages, max_tokens)` sends a plain request to the agent's
    model and returns its text (its usage and cost count toward the run).
    """

    limit: int
    context: int
    reserved_output: int
    counter: Callable[[Sequence[Message]], int]
    text_counter: Callable[[str], int]
    asker: Ask | None = None

    def count(self, messages: Sequence[Message]) -> int:
        return self.counter(messages)

    def count_text(self, text: str) -> int:
        return self.text_counter(text)

    def fits(self, messages: Sequence[Message]) -> bool:
        return self.counter(messages) <= self.limit

    async def ask(self, messages: Sequence[Message], max_tokens: int) -> str:
        if self.asker is None:
            raise UsageError("this budget cannot ask the model (no model attached)")
        return await self.asker(messages, max_tokens)


HistoryPolicy = Callable[
    [list[Message], WindowBudget], Sequence[Message] | Awaitable[Sequence[Message]]
]


def history_units(messages: Sequence[Message]) -> list[list[int]]:
    """Indices grouped into units that are kept or dropped whole.

    An assistant message with tool calls forms one unit with the tool results that follow it;
    every other message is a unit of its own.
    """
    units: list[list[int]] = []
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage) and units:
            units[-1].append(index)
        else:
            units.append([index])
    return units


def pinned_indices(messages: Sequence[Message]) -> set[int]:
    """System messages and the latest user message: never dropped."""
    pinned = {i for i, m in enumerate(messages) if isinstance(m, SystemMessage)}
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    if users:
        pinned.add(users[-1])
    return pinned


def _droppable(messages: Sequence[Message]) -> list[list[int]]:
    """Units that may go, in the order they go: oldest first, earlier user turns last."""
    pinned = pinned_indices(messages)
    units = [u for u in history_units(messages) if not pinned.intersection(u)]
    others = [u for u in units if not isinstance(messages[u[0]], UserMessage)]
    users = [u for u in units if isinstance(messages[u[0]], UserMessage)]
    return others + users


def drop_oldest(messages: list[Message], budget: WindowBudget) -> list[Message]:
    """Drop the oldest messages (a tool call with its results at once) until the request fits."""
    dropped: set[int] = set()
    kept = list(messages)
    for unit in _droppable(messages):
        if budget.fits(kept):
            break
        dropped.update(unit)
        kept = [m for i, m in enumerate(messages) if i not in dropped]
    return kept


def truncate_tool_results(max_chars: int = 2_000) -> HistoryPolicy:
    """Cut tool results longer than `max_chars`, oldest first, until the request fits."""
    if max_chars < 1:
        raise UsageError("truncate_tool_results needs max_chars >= 1")

    def truncate(messages: list[Message], budget: WindowBudget) -> list[Message]:
        result = list(messages)
        for index, message in enumerate(messages):
            if budget.fits(result):
                break
            if isinstance(message, ToolMessage) and len(message.content) > max_chars:
                cut = len(message.content) - max_chars
                text = f"{message.content[:max_chars]}\n[... {cut} characters cut to fit]"
                result[index] = dataclasses.replace(message, content=text)
        return result

    truncate.__name__ = f"truncate_tool_results({max_chars})"
    return truncate


def chain(*policies: HistoryPolicy) -> HistoryPolicy:
    """Apply `policies` in order, stopping as soon as the request fits."""

    async def chained(messages: list[Message], budget: WindowBudget) -> list[Message]:
        for policy in policies:
            if budget.fits(messages):
                break
            messages = await apply_policy(policy, messages, budget)
        return messages

    chained.__name__ = "chain(" + ", ".join(_name(p) for p in policies) + ")"
    return chained


def _name(policy: HistoryPolicy) -> str:
    return getattr(policy, "__name__", type(policy).__name__)


async def apply_policy(
    policy: HistoryPolicy, messages: list[Message], budget: WindowBudget
) -> list[Message]:
    """Run a sync or async policy on a copy of `messages`."""
    result = policy(list(messages), budget)
    if inspect.isawaitable(result):
        result = await result
    return list(result)


DEFAULT_HISTORY_POLICY: HistoryPolicy = chain(truncate_tool_results(2_000), drop_oldest)
"""The agents' default: cut tool results over 2,000 characters, then drop the oldest messages."""


def reserved_output(request: ModelRequest, context: int, max_output: int | None) -> int:
    """Output tokens kept free: the request's cap, else the catalog's, at most a quarter."""
    asked = request.settings.max_completion_tokens if request.settings is not None else None
    if asked is not None:
        return asked
    return min(max_output or context, context // 4)


def check_policy_result(before: Sequence[Message], after: Sequence[Message]) -> None:
    """A policy's result keeps system messages, the latest user message and call pairs."""
    for index in sorted(pinned_indices(before)):
        message = before[index]
        if not any(_keeps(m, message) for m in after):
            what = "latest user message" if isinstance(message, UserMessage) else "system prompt"
            raise UsageError(f"the history policy dropped the {what}; it must keep it")
    if _unanswered(before) != _unanswered(after):
        raise UsageError(
            "the history policy split a tool call from its result; drop or keep them together"
        )


def _keeps(candidate: Message, original: Message) -> bool:
    """The same message, or a system message with text added after it (a summary)."""
    if candidate is original or candidate == original:
        return True
    return (
        isinstance(candidate, SystemMessage)
        and isinstance(original, SystemMessage)
        and candidate.content.startswith(original.content)
    )


def _unanswered(messages: Sequence[Message]) -> set[str]:
    """Tool calls without a result, and results without a call."""
    calls = {c.id for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls}
    answers = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return calls ^ answers


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
        from ._settings import ModelSettings

        settings = ModelSettings(max_completion_tokens=max_tokens)
        response = await self._model.request(ModelRequest(tuple(messages), (), settings))
        if self._ctx is not None:
            self._ctx.usage.add_request(response.usage, retries=response.retries)
        if self._meter is not None:
            self._meter.add(self._model.name, response.usage)
        return response.message.content or ""
