"""Runs against `QuirkServer` shared by the learning, silent-drop, probe and model tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentloop import Agent, OpenAICompatible, tool
from support.quirk_server import QuirkServer

PROMPT = "Add 2 and 2."


ANSWER = "The total is 4."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def learned(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The features of the ``profile_learned`` events, in order."""
    return [e["feature"] for e in logs if e["event"] == "profile_learned"]


def model_for(server: QuirkServer, **options: Any) -> OpenAICompatible:
    return OpenAICompatible("m", base_url=server.base_url, **options)


def system_text(body: Mapping[str, Any]) -> str:
    first = body["messages"][0]
    return first["content"] if first["role"] == "system" else ""


def tool_ran(messages: Sequence[Any]) -> bool:
    return any(getattr(m, "role", None) == "tool" and m.content == "4" for m in messages)


async def run_twice(
    server: QuirkServer, model: OpenAICompatible, agent: Agent[Any]
) -> tuple[Any, Any, int]:
    """Two runs of `agent`; returns both results and the requests the first one sent."""
    first = await agent.run(PROMPT)
    sent = len(server.bodies)
    second = await agent.run(PROMPT)
    return first, second, sent
