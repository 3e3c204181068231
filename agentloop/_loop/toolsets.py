"""A run's toolsets, connected: their tools beside the agent's, listed again when they change."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from .._errors import UsageError
from .._log import get_logger
from .._schema_limits import check_tool_count

if TYPE_CHECKING:
    from .._tools import Tool
    from .._toolsets import OpenToolset, Toolset
    from .plan import RunPlan

__all__ = ["RunToolsets", "only_error"]

_log = get_logger()


class RunToolsets:
    """The toolsets of one run. `connect` enters them on the run's exit stack; `plan` is the
    agent's plan with their tools, rebuilt by `refresh` when a toolset says its tools changed."""

    __slots__ = ("_base", "_open", "plan")

    def __init__(self, base: RunPlan) -> None:
        self._base = base
        self._open: list[tuple[Toolset, OpenToolset]] = []
        self.plan = base

    async def connect(self, stack: AsyncExitStack) -> RunPlan:
        """Connect every toolset (each one is left when the stack closes) and list the tools."""
        for toolset in self._base.toolsets:
            self._open.append((toolset, await stack.enter_async_context(toolset.connect())))
        return await self._list()

    @property
    def changed(self) -> bool:
        return any(opened.changed for _, opened in self._open)

    async def refresh(self) -> RunPlan:
        """The plan with the tools as they are now (call when `changed`)."""
        _log.info("toolsets_changed", toolsets=[t.name for t, o in self._open if o.changed])
        return await self._list()

    async def _list(self) -> RunPlan:
        found: list[Tool] = []
        owners: dict[str, str] = {}
        taken: Mapping[str, Tool] = self._base.dispatch.tools
        for toolset, opened in self._open:
            for item in await opened.list_tools():
                _check_free(item.name, toolset.name, taken, owners)
                owners[item.name] = toolset.name
                found.append(item)
        check_tool_count(len(taken) + len(found))
        self.plan = self._base.with_tools(found)
        return self.plan


def _check_free(
    name: str, source: str, taken: Mapping[str, Tool], owners: Mapping[str, str]
) -> None:
    other = "the agent's own tools" if name in taken else owners.get(name)
    if other is not None:
        raise UsageError(
            f"toolset {source!r} offers a tool named {name!r}, as does {other}; give the "
            "toolset a prefix (for example MCPServer.stdio(..., prefix='docs_'))"
        )


def only_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a group holds (task groups of toolsets wrap what passes through them);
    the group itself when it holds more than one."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop()
        inner: tuple[BaseException, ...] = getattr(item, "exceptions", ())
        if isinstance(item, BaseExceptionGroup):
            pending.extend(inner)
        else:
            leaves.append(item)
    return leaves[0] if len(leaves) == 1 else group
