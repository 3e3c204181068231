"""A 20-turn tool-using run on a 4K-context model that stays within the window.

    python examples/context_window_4k.py

gpt-3.5-turbo-0613 has a 4,096-token context window. Every tool result stays in the history, so
after a few turns the conversation no longer fits. Before each request agentloop counts the
prompt (with the model's own tokenizer) and, when prompt plus reserved output would not fit,
applies the agent's history policy to what it sends: here the default one, which truncates large
tool results and then drops the oldest tool turns, never the system prompt, the question, or a
tool call without its result. The transcript (`result.messages`) keeps everything.

Without a key it runs offline against agentloop's fake server. With OPENROUTER_API_KEY set it
runs against openai/gpt-3.5-turbo-0613 on OpenRouter (about $0.03), with a cost cap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from agentloop import (
    Agent,
    AssistantMessage,
    Limits,
    Model,
    OpenRouter,
    RunResult,
    count_text_tokens,
    lookup_model,
    tool,
)
from agentloop._wire.tokens import count_body_tokens
from agentloop.testing import FakeServer, Reply, reply, tool_call

MODEL = "openai/gpt-3.5-turbo-0613"
TURNS = 20
LEVELS = ("INFO", "INFO", "WARN", "INFO", "ERROR")


@tool
def read_log(chunk: int) -> str:
    """Read one chunk (0 to 19) of the server log.

    Args:
        chunk: which chunk to read.
    """
    lines = [
        f"2026-11-23T04:{chunk:02d}:{i:02d} {LEVELS[(chunk + i) % 5]} worker-{i % 4} "
        f"request {chunk * 100 + i} handled in {(chunk * 7 + i * 13) % 250} ms"
        for i in range(24)
    ]
    return "\n".join(lines)


def _errors_in_log() -> int:
    return sum(read_log.function(c).count(" ERROR ") for c in range(TURNS))  # pyright: ignore[reportUnknownMemberType]


INSTRUCTIONS = (
    "You audit server logs. Read the log with read_log one chunk at a time, chunk 0 to 19, "
    "one call per turn, noting how many ERROR lines each chunk has. After the last chunk, answer "
    "with the total number of ERROR lines only."
)
QUESTION = "How many ERROR lines are in chunks 0 to 19 of the log?"


def _offline_script() -> list[Callable[[dict[str, Any]], Reply]]:
    """The fake model reads chunks in order, then answers from what it was told."""

    def answer(body: dict[str, Any]) -> Reply:
        last = _last_chunk(body)  # the latest turn is always sent, whatever was dropped
        if last < TURNS - 1:
            return tool_call(("read_log", {"chunk": last + 1}))
        return reply(str(_errors_in_log()))

    return [answer] * (TURNS + 1)


def _last_chunk(body: dict[str, Any]) -> int:
    calls = [c for m in body["messages"] for c in m.get("tool_calls") or ()]
    return json.loads(calls[-1]["function"]["arguments"])["chunk"] if calls else -1


def print_table(
    result: RunResult[Any], bodies: list[dict[str, Any]], model: str, *, real: bool
) -> None:
    """One row a request; `reported` is the server's prompt_tokens (real runs only)."""
    info = lookup_model(model)
    assert info is not None and info.context is not None
    limit = info.context - min(info.max_output or info.context, info.context // 4)
    # Request i was sent when the transcript held everything before the i-th model answer.
    answers = [i for i, m in enumerate(result.messages) if isinstance(m, AssistantMessage)]
    print(f"{model}: context {info.context}, {info.context - limit} tokens kept for the answer")
    print(
        f"{'turn':>4} {'transcript':>10} {'sent':>5} {'dropped':>7} {'tokens':>7} "
        f"{'reported':>8} {'fits':>5}"
    )
    for turn, (body, before) in enumerate(zip(bodies, answers, strict=False), start=1):
        sent = len(body["messages"])
        tokens = count_body_tokens(body, model).tokens
        reported = result.requests[turn - 1].input_tokens if real else 0
        fits = "yes" if tokens <= limit else "NO"
        print(
            f"{turn:>4} {before:>10} {sent:>5} {before - sent:>7} {tokens:>7} "
            f"{reported or '-':>8} {fits:>5}"
        )
    print(
        f"answer: {result.output!r} (expected {_errors_in_log()}); "
        f"{result.usage.requests} requests, {result.usage.describe_tokens()}, "
        f"cost {'unknown' if result.cost is None else f'${result.cost:.4f}'}"
    )


async def run_offline() -> None:
    with FakeServer(_offline_script(), model_name=MODEL) as server:
        result = await _agent(server.model()).run(QUESTION)
    print_table(result, server.requests, MODEL, real=False)


async def run_openrouter() -> None:
    bodies: list[dict[str, Any]] = []

    async def keep(request: httpx.Request) -> None:
        bodies.append(json.loads(request.content))

    async with httpx.AsyncClient(event_hooks={"request": [keep]}) as client:
        model = OpenRouter(MODEL, http_client=client)
        result = await _agent(model).run(QUESTION, limits=Limits(max_turns=TURNS + 4))
    print_table(result, bodies, MODEL, real=True)


def _agent(model: Model) -> Agent[str]:
    return Agent(model, instructions=INSTRUCTIONS, tools=[read_log], limits=Limits(max_cost=0.10))


def main() -> None:
    chunk = count_text_tokens(read_log.function(0), MODEL).tokens  # pyright: ignore[reportUnknownMemberType]
    print(f"each tool result is about {chunk} tokens; {TURNS} of them cannot all fit in 4K")
    anyio.run(run_openrouter if os.environ.get("OPENROUTER_API_KEY") else run_offline)


if __name__ == "__main__":
    main()
