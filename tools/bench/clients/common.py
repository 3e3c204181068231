"""What every client shares: the structured answer's model, the 20 tool functions, the prompt."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

PROMPT = "Add 1 and 2 with the add tool."
SYSTEM = "You are a calculator. Use the tools."


class Step(BaseModel):
    name: str
    detail: str


class Report(BaseModel):
    """The structured final answer: five fields, one a nested list."""

    title: str
    answer: int
    confidence: float
    verified: bool
    steps: list[Step]


ADD_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    },
}


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first integer.
        b: the second integer.
    """
    return a + b


async def add_async(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first integer.
        b: the second integer.
    """
    return a + b


# The same tool as a coroutine function, named "add" too: the frameworks that run sync tools in
# a worker thread (agentloop, pydantic-ai) would otherwise pay a thread hop the raw loop does not.
add_async.__name__ = add_async.__qualname__ = "add"


def tool_functions(count: int = 20) -> list[Any]:
    """`count` distinct typed, documented functions (the import scenario's 20 tools)."""
    functions: list[Any] = []
    for i in range(count):
        namespace: dict[str, Any] = {}
        exec(
            f'''
def lookup_{i}(city: str, days: int, units: str = "metric", detailed: bool = False) -> str:
    """Look up forecast number {i} for a city.

    Args:
        city: the city name, e.g. "Lisbon".
        days: how many days ahead, 1 to 7.
        units: "metric" or "imperial".
        detailed: whether to include hourly values.
    """
    return city
''',
            namespace,
        )
        functions.append(namespace[f"lookup_{i}"])
    return functions


class BaseClient:
    """The interface the driver calls; a scenario a client does not support raises."""

    name = "?"

    async def open(self, base_url: str, connections: int) -> None:
        raise NotImplementedError

    async def tool_run(self) -> str:
        raise NotImplementedError

    async def structured_run(self) -> Report:
        raise NotImplementedError

    async def stream_run(self) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        return None
