"""`summarize_older`: a history policy that replaces the oldest messages with a summary.

The summary is written by the agent's own model (``budget.ask``; its usage and cost count toward
the run) and appended to the system prompt, which every server accepts. Summaries are kept per
policy by a digest of what they summarize, so the next turns reuse them instead of asking again,
and a longer prefix is summarized from the previous summary plus the newly dropped messages.
To make room for several turns at once, it summarizes until the prompt is at most `fill` of the
budget.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from ._errors import UsageError
from ._history_policy import HistoryPolicy, WindowBudget, history_units, pinned_indices
from ._messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
    messages_to_json,
)

__all__ = ["SUMMARY_HEADING", "summarize_older"]

SUMMARY_HEADING = "Summary of the earlier conversation:"
_INSTRUCTIONS = (
    "Summarize the conversation below for your own later use. Keep the facts, numbers, decisions, "
    "tool results and open questions that matter to the task; drop small talk. Be brief."
)
_KEPT = 32


def summarize_older(
    *, max_summary_tokens: int = 400, fill: float = 0.75, instructions: str = _INSTRUCTIONS
) -> HistoryPolicy:
    """Summarize the oldest messages with the agent's model until the request fits."""
    if max_summary_tokens < 1 or not 0 < fill <= 1:
        raise UsageError("summarize_older needs max_summary_tokens >= 1 and 0 < fill <= 1")
    kept: OrderedDict[str, str] = OrderedDict()

    async def summarize(messages: list[Message], budget: WindowBudget) -> list[Message]:
        pinned = pinned_indices(messages)
        units = [u for u in history_units(messages) if not pinned.intersection(u)]
        if not units:
            return messages
        digests = _prefix_digests(messages, units)
        start, previous = 0, None
        for n in range(len(units), 0, -1):
            if digests[n - 1] in kept:
                start, previous = n, kept[digests[n - 1]]
                candidate = _with_summary(messages, units[:n], previous)
                if budget.fits(candidate):
                    return candidate
                break
        target = int(budget.limit * fill) - max_summary_tokens
        end = next(
            (
                n
                for n in range(start + 1, len(units) + 1)
                if budget.count(_without(messages, units[:n])) <= target
            ),
            len(units),
        )
        if end <= start:
            return messages
        newly = [messages[i] for unit in units[start:end] for i in unit]
        text = _trim(_transcript(previous, newly), budget, max_summary_tokens, instructions)
        ask = [SystemMessage(instructions), UserMessage(text)]
        summary = (await budget.ask(ask, max_summary_tokens)).strip()
        kept[digests[end - 1]] = summary
        while len(kept) > _KEPT:
            kept.popitem(last=False)
        return _with_summary(messages, units[:end], summary)

    summarize.__name__ = f"summarize_older({max_summary_tokens})"
    return summarize


def _prefix_digests(messages: Sequence[Message], units: Sequence[Sequence[int]]) -> list[str]:
    digests: list[str] = []
    running = hashlib.sha256()
    for unit in units:
        running.update(messages_to_json([messages[i] for i in unit]))
        digests.append(running.copy().hexdigest())
    return digests


def _without(messages: Sequence[Message], units: Sequence[Sequence[int]]) -> list[Message]:
    gone = {i for unit in units for i in unit}
    return [m for i, m in enumerate(messages) if i not in gone]


def _with_summary(
    messages: Sequence[Message], units: Sequence[Sequence[int]], summary: str
) -> list[Message]:
    rest = _without(messages, units)
    note = f"{SUMMARY_HEADING}\n{summary}"
    if rest and isinstance(rest[0], SystemMessage):
        first = rest[0]
        return [SystemMessage(f"{first.content}\n\n{note}", first.role), *rest[1:]]
    return [SystemMessage(note), *rest]


def _transcript(previous: str | None, messages: Sequence[Message]) -> str:
    lines = [f"{SUMMARY_HEADING}\n{previous}\n"] if previous else []
    for message in messages:
        if isinstance(message, UserMessage):
            content = message.content
            text = content if isinstance(content, str) else _parts_text(content)
            lines.append(f"User: {text}")
        elif isinstance(message, AssistantMessage):
            if message.content:
                lines.append(f"Assistant: {message.content}")
            lines.extend(f"Assistant called {c.name}({c.arguments})" for c in message.tool_calls)
        elif isinstance(message, ToolMessage):
            lines.append(f"Tool {message.name or message.tool_call_id} returned: {message.content}")
    return "\n".join(lines)


def _parts_text(parts: Sequence[object]) -> str:
    texts = [str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p]  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    return " ".join(texts) or "[non-text content]"


def _trim(text: str, budget: WindowBudget, max_summary_tokens: int, instructions: str) -> str:
    """Keep the end of `text` so that the summary request fits the window."""
    allowed = budget.context - max_summary_tokens - budget.count_text(instructions) - 32
    if allowed < 1:
        raise UsageError("max_summary_tokens leaves no room in the context window to summarize")
    tokens = budget.count_text(text)
    while tokens > allowed:
        keep = max(1, len(text) * allowed // tokens - 16)
        text = "[...]\n" + text[-keep:]
        tokens = budget.count_text(text)
    return text
