"""The run's tables: accuracy per category and client (BFCL's verdicts, with the seconds each
client spent), and the kinds of mistakes each client made.

A result is one client's record for one case (what `run.py` writes to its JSON): ``category``,
``client``, ``correct``, ``seconds``, ``output`` (the decoded calls, None when undecodable),
``error_type`` and ``errors`` (BFCL's checker's), ``note`` (the client's own error, if any),
``expected_calls`` and ``first_calls_right`` (for an answer with too many calls: whether its first
``expected_calls`` calls alone pass BFCL's checker).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Result = Mapping[str, Any]


def _cell(results: Sequence[Result]) -> tuple[str, str]:
    if not results:
        return "", ""
    correct = sum(1 for r in results if r["correct"])
    seconds = sum(float(r["seconds"]) for r in results)
    return f"{correct}/{len(results)}", f"{seconds:.0f}"


def accuracy_table(
    results: Iterable[Result], categories: Sequence[str], clients: Sequence[str]
) -> str:
    """Markdown: a row per category and a total row; per client, ``correct/total`` and the
    seconds it spent on those cases."""
    rows = list(results)
    header = ["category"]
    for client in clients:
        header += [f"{client}: correct", f"{client}: s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for category in [*categories, None]:
        cells = [category or "**total**"]
        for client in clients:
            chosen = [
                r
                for r in rows
                if r["client"] == client and (category is None or r["category"] == category)
            ]
            cells += list(_cell(chosen))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _repeats(calls: Sequence[Any]) -> bool:
    """Whether `calls` are their first few calls over and over (the same round again)."""
    return any(
        all(calls[i] == calls[i % period] for i in range(len(calls)))
        for period in range(1, len(calls))
    )


def mistake_kind(result: Result) -> str | None:
    """A short name for what went wrong (None when the answer was right)."""
    if result["correct"]:
        return None
    output = result.get("output")
    if result["category"] == "irrelevance":
        return "called a tool in irrelevance"
    if output is None:
        return "undecodable arguments"
    if not output:
        return "no call" + (f" ({result['note']})" if result.get("note") else "")
    error_type = str(result.get("error_type") or "unknown")
    if error_type.endswith(":wrong_count"):
        expected = int(result.get("expected_calls") or 0)
        if len(output) < expected:
            return "too few calls"
        repeated = ": the same calls again" if _repeats(output) else ""
        first = ", the first ones right" if result.get("first_calls_right") else ""
        return f"too many calls{repeated}{first}"
    if error_type.endswith(":cannot_find_match"):
        for error in result.get("errors") or []:
            if isinstance(error, dict):
                for detail in error.values():
                    return str(detail.get("sub_error_type"))
    return error_type


def mistakes_table(results: Iterable[Result], clients: Sequence[str]) -> str:
    """Markdown: how often each kind of mistake happened, per client (most common first)."""
    counts = {client: Counter[str]() for client in clients}
    for result in results:
        kind = mistake_kind(result)
        if kind is not None and result["client"] in counts:
            counts[result["client"]][kind] += 1
    total = Counter[str]()
    for counter in counts.values():
        total.update(counter)
    lines = ["| mistake | " + " | ".join(clients) + " |", "|" + "---|" * (len(clients) + 1)]
    for kind, _ in total.most_common():
        lines.append(f"| {kind} | " + " | ".join(str(counts[c][kind]) for c in clients) + " |")
    return "\n".join(lines)
