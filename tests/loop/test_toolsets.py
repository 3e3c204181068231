"""The toolset seam without MCP: tools listed when a run starts, again when they change, and a
source's own failure ending the run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agentloop import Agent, Tool, ToolMessage, ToolsetError, UsageError
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio


class Shelf:
    """A toolset whose `grow` tool adds a tool `more`; counts connections and closings."""

    name = "shelf"

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.grown = False
        self.changed = False

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Shelf]:
        self.opened += 1
        try:
            yield self
        finally:
            self.closed += 1

    async def list_tools(self) -> list[Tool]:
        self.changed = False
        tools = [Tool.from_schema("grow", "Add a tool.", {"type": "object"}, self._grow)]
        if self.grown:
            tools.append(Tool.from_schema("more", "Added.", {"type": "object"}, _more))
        tools.append(Tool.from_schema("broken", "Its source fails.", {"type": "object"}, _broken))
        return tools

    async def _grow(self) -> str:
        self.grown = self.changed = True
        return "grown"


async def _more() -> str:
    return "more!"


async def _broken() -> str:
    raise ToolsetError("the shelf fell")


def offered(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


async def test_tools_are_listed_at_the_start_and_again_when_they_change() -> None:
    shelf = Shelf()
    fake = FakeServer([tool_call(("grow", {})), tool_call(("more", {})), reply("done")])
    result = await Agent(fake.model(), toolsets=[shelf]).run("go")
    assert offered(fake.requests[0]) == ["grow", "broken"]
    assert offered(fake.requests[1]) == ["grow", "more", "broken"]
    answers = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert answers == ["grown", "more!"]
    assert (shelf.opened, shelf.closed) == (1, 1)


async def test_a_source_failure_ends_the_run_and_the_toolset_is_closed() -> None:
    shelf = Shelf()
    fake = FakeServer([tool_call(("broken", {})), reply("never")])
    with pytest.raises(ToolsetError, match="the shelf fell") as caught:
        await Agent(fake.model(), toolsets=[shelf]).run("go")
    assert caught.value.usage is not None and caught.value.usage.requests == 1
    [answer] = [m for m in caught.value.messages if isinstance(m, ToolMessage)]
    assert answer.is_error and "could not run" in answer.content
    assert (shelf.opened, shelf.closed) == (1, 1)


def test_toolsets_takes_only_toolsets() -> None:
    def plain() -> str:
        return "x"

    with pytest.raises(UsageError, match="tools="):
        Agent(FakeServer().model(), toolsets=[plain])  # type: ignore[list-item]
