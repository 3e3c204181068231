"""History policies: what a run sends when a request would not fit the model's context window.

A policy is a small callable ``policy(messages, budget) -> messages`` (sync or async). It gets a
copy of the messages about to be sent and a `WindowBudget` (the token limit, a counter, and
``ask`` to query the agent's model), and returns the messages to send. Whatever it returns must
keep every system message, the latest user message, and each assistant tool call together with
its results; the fit step (`agentloop._loop.window`) checks this with `check_policy_result` and
raises `UsageError` for a policy that breaks it. Policies compose with `chain`; the default chain
truncates large tool results, then drops the oldest messages. They only run when the request
would not fit anyway (that request would be rejected), so they never change a run that fits.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._errors import UsageError
from ._messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

__all__ = [
    "DEFAULT_HISTORY_POLICY",
    "HistoryPolicy",
    "WindowBudget",
    "apply_policy",
    "chain",
    "check_policy_result",
    "drop_oldest",
    "history_units",
    "pinned_indices",
    "truncate_tool_results",
]

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
