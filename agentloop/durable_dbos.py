"""Durable runs on DBOS (the `dbos` extra): a run killed at any point resumes where it stopped.

::

    from dbos import DBOS
    from agentloop.durable_dbos import DBOSAgent

    extractor = DBOSAgent(agent, name="extract")      # before DBOS.launch()
    DBOS(config={"name": "extract", "system_database_url": "sqlite:///runs.sqlite"})
    DBOS.launch()                                     # resumes the runs a dead process left
    record = await extractor.run("id=42 ...", workflow_id="doc-42")

Each run is a DBOS workflow; each model request and each tool call is a DBOS step (see
`agentloop._durable`). DBOS records a step's result when it finishes, so a step that finished is
never run again, whatever kills the process; a step that was in flight when the process died has
no result yet, and runs again on recovery. SQLite is enough on one machine; several workers share
a PostgreSQL ``system_database_url``. DBOS is asyncio-only: durable runs need the asyncio backend.

A run's workflow returns a JSON record (`run_record`): the output (as JSON values), the transcript
(as `messages_to_json` writes it), the usage and the cost. Start runs with a `workflow_id` (a
document's key, for example): starting the same id again returns the same run, never a second.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from ._durable import JSON, StepKind, durable_agent
from ._errors import UsageError

if TYPE_CHECKING:
    from ._agent import Agent
    from ._result import RunResult

__all__ = ["DBOSAgent", "DBOSEngine", "require_dbos", "run_record"]

INSTALL_HINT = "pip install 'agentloop[dbos]'"


def require_dbos() -> Any:
    """The `dbos` module, or a `UsageError` naming the extra to install."""
    try:  # by name: the extra may be missing where the type checker runs
        return importlib.import_module("dbos")
    except ImportError as exc:
        raise UsageError(f"agentloop.durable_dbos needs DBOS: {INSTALL_HINT} ({exc})") from None


class DBOSEngine:
    """Steps as DBOS steps (``DBOS.run_step_async``), named ``agentloop.<kind>:<name>``.

    Outside a workflow DBOS runs the call as it is, so a durable agent also runs plainly.
    """

    def __init__(self) -> None:
        self._dbos: Any = require_dbos().DBOS

    async def step(self, kind: StepKind, name: str, call: Callable[[], Awaitable[JSON]]) -> JSON:
        options = {"name": f"agentloop.{kind}:{name}"}
        return await self._dbos.run_step_async(options, call)


def run_record(result: RunResult[Any]) -> dict[str, Any]:
    """A finished run as JSON values: output, messages, usage, cost, run id."""
    return {
        "output": to_jsonable_python(result.output),
        "messages": json.loads(result.messages_json()),
        "usage": dataclasses.asdict(result.usage),
        "cost": result.cost,
        "run_id": result.run_id,
    }


class DBOSAgent:
    """An agent whose runs are DBOS workflows named ``agentloop.<name>``.

    Build it before ``DBOS.launch()``, in every process that may run or recover its runs (DBOS
    finds a workflow's code by its name). `prompt` values must be JSON (a string, usually).
    """

    def __init__(self, agent: Agent[Any], *, name: str) -> None:
        module = require_dbos()
        self.agent: Agent[Any] = durable_agent(agent, DBOSEngine())
        self.name: str = f"agentloop.{name}"
        self._dbos: Any = module.DBOS
        self._set_id: Any = module.SetWorkflowID
        durable = self.agent

        async def run_workflow(prompt: Any) -> dict[str, Any]:
            return run_record(await durable.run(prompt))

        run_workflow.__qualname__ = run_workflow.__name__ = self.name
        self._workflow: Callable[[Any], Awaitable[dict[str, Any]]] = self._dbos.workflow(
            name=self.name
        )(run_workflow)

    async def run(self, prompt: Any, *, workflow_id: str | None = None) -> dict[str, Any]:
        """Run to the end (or return the record of the finished run with this id)."""
        handle = await self.start(prompt, workflow_id=workflow_id)
        return await handle.get_result()

    async def start(self, prompt: Any, *, workflow_id: str | None = None) -> Any:
        """Start a run; a DBOS ``WorkflowHandleAsync`` (``await handle.get_result()``)."""
        if workflow_id is None:
            return await self._dbos.start_workflow_async(self._workflow, prompt)
        with self._set_id(workflow_id):
            return await self._dbos.start_workflow_async(self._workflow, prompt)
