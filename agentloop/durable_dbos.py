"""Durable runs on DBOS (the `dbos` extra): a run killed at any point resumes where it stopped.

::

    from agentloop.durable_dbos import DBOSAgent, launch

    extractor = DBOSAgent(agent, name="extract")      # before launch
    launch({"name": "extract", "system_database_url": "sqlite:///runs.sqlite"})
    record = await extractor.run("id=42 ...", workflow_id="doc-42")

`launch` is ``DBOS(config=...)`` and ``DBOS.launch()`` with an executor id that no live worker
holds (`agentloop._dbos_launch` says why it matters and how it is kept); at launch a worker
resumes the runs left unfinished under its id. `DBOSAgent` refuses to start runs in a process
whose DBOS was launched otherwise.

Each run is a DBOS workflow; each model request and each tool call is a DBOS step (see
`agentloop._durable`). DBOS records a step's result when it finishes, so a step that finished is
never run again, whatever kills the process; a step that was in flight when the process died has
no result yet, and runs again on recovery. SQLite is enough on one machine; several workers share
a PostgreSQL ``system_database_url``. DBOS is asyncio-only: durable runs need the asyncio backend.

A budget of requests shared by every worker: ``DBOSAgent(..., rate_limit=RateLimit(
requests_per_minute=500))`` takes a permit from a DBOS queue's rate limiter before each model
request (`RatePermits`), which DBOS enforces across processes through the system database.

A run's workflow returns a JSON record (`run_record`): the output (as JSON values), the transcript
(as `messages_to_json` writes it), the usage and the cost. Start runs with a `workflow_id` (a
document's key, for example): starting the same id again returns the same run, never a second.

Approvals that wait: with ``Agent(approver="defer")`` a run that reaches calls needing approval
publishes them (the workflow event ``agentloop.pending``) and waits, durably, for a decision
(the workflow message topic ``agentloop.approvals``). A worker that dies meanwhile loses nothing:
the run that DBOS recovers replays its recorded steps and waits again. Any process reads what
waits and decides::

    from agentloop.durable_dbos import approve, pending_approvals

    waiting = await pending_approvals("ticket-7")              # (PendingApproval(...), ...)
    await approve("ticket-7", {waiting[0].id: True})

From a process that is not a DBOS app, pass ``client=DBOSClient(system_database_url=...)``. A
decision is sent once per pause: sending it again, or deciding calls that no longer wait, is a
`UsageError` and changes nothing. A run given no decision within `approval_timeout` seconds
returns its record with the calls still pending and its ``state`` for `Agent.resume`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from ._dbos_launch import held_executor, launch
from ._dbos_rate import RatePermits, register_permit_workflow
from ._deferred import PendingApproval
from ._durable import JSON, StepKind, durable_agent
from ._errors import UsageError
from ._wire.rate_limit import RateLimit

if TYPE_CHECKING:
    from ._agent import Agent
    from ._result import RunResult

__all__ = [
    "DBOSAgent",
    "DBOSEngine",
    "RatePermits",
    "approve",
    "launch",
    "pending_approvals",
    "require_dbos",
    "run_record",
]

INSTALL_HINT = "pip install 'agentloop[dbos]'"
PENDING_EVENT = "agentloop.pending"
APPROVALS_TOPIC = "agentloop.approvals"
WEEK = 7 * 24 * 3600.0
_DBOS_DEFAULT_EXECUTOR = "local"
"""The executor id DBOS gives every worker that sets none (and no ``DBOS__VMID``)."""


def require_dbos() -> Any:
    """The `dbos` module, or a `UsageError` naming the extra to install."""
    try:  # by name: the extra may be missing where the type checker runs
        return importlib.import_module("dbos")
    except ImportError as exc:
        raise UsageError(f"agentloop.durable_dbos needs DBOS: {INSTALL_HINT} ({exc})") from None


class DBOSEngine:
    """Steps as DBOS steps (``DBOS.run_step_async``), named ``agentloop.<kind>:<name>``.

    Outside a workflow DBOS runs the call as it is, so a durable agent also runs plainly. With
    `permits`, each model step first takes its permit (not again when it is replayed).
    """

    def __init__(self, permits: RatePermits | None = None) -> None:
        self._dbos: Any = require_dbos().DBOS
        self.permits: RatePermits | None = permits

    async def step(self, kind: StepKind, name: str, call: Callable[[], Awaitable[JSON]]) -> JSON:
        if kind == "model" and self.permits is not None:
            await self.permits.take()
        options = {"name": f"agentloop.{kind}:{name}"}
        return await self._dbos.run_step_async(options, call)


def run_record(result: RunResult[Any]) -> dict[str, Any]:
    """A run as JSON values: output, messages, usage, cost, run id, and the calls still waiting
    for approval with the run's ``state`` (for `Agent.resume`) if it stopped before them."""
    waiting = result.pending_approvals
    return {
        "output": to_jsonable_python(result.output),
        "messages": json.loads(result.messages_json()),
        "usage": dataclasses.asdict(result.usage),
        "cost": result.cost,
        "run_id": result.run_id,
        "pending_approvals": [dataclasses.asdict(call) for call in waiting],
        "state": result.state_json() if waiting else None,
    }


async def pending_approvals(
    workflow_id: str, *, client: Any = None, wait: float = 0.0
) -> tuple[PendingApproval, ...]:
    """The calls the durable run `workflow_id` waits on: empty if none (or none yet).

    Call it inside a DBOS app, or from any process with ``client=DBOSClient(...)`` on the same
    system database. `wait` gives a run that has published nothing yet that many seconds.
    """
    via = require_dbos().DBOS if client is None else client
    calls = await via.get_event_async(workflow_id, PENDING_EVENT, timeout_seconds=wait)
    return tuple(PendingApproval(**call) for call in calls or ())


async def approve(workflow_id: str, decisions: Mapping[str, bool], *, client: Any = None) -> None:
    """Decide every call the durable run `workflow_id` waits on: ``{call_id: True | False}``.

    Approved calls run, refused ones are answered to the model as refused, and the run goes on
    in whichever worker holds it. A `UsageError`, and nothing sent, if the decisions do not
    answer exactly the calls waiting. The same decisions sent twice are delivered once.
    """
    waiting = await pending_approvals(workflow_id, client=client)
    if not waiting:
        raise UsageError(f"the run {workflow_id!r} waits for no approval")
    answered = _decisions(dict(decisions), waiting)
    if answered is None:
        ids = ", ".join(call.id for call in waiting)
        raise UsageError(f"the run {workflow_id!r} waits for decisions on exactly: {ids}")
    key = f"{APPROVALS_TOPIC}:{workflow_id}:{','.join(sorted(answered))}"
    via = require_dbos().DBOS if client is None else client
    await via.send_async(workflow_id, answered, APPROVALS_TOPIC, idempotency_key=key)


def _decisions(message: Any, waiting: tuple[PendingApproval, ...]) -> dict[str, bool] | None:
    """The decisions in `message` if they answer exactly the calls `waiting`, else None."""
    if not isinstance(message, dict):
        return None
    decisions: dict[Any, Any] = message  # pyright: ignore[reportUnknownVariableType]
    if set(decisions) != {call.id for call in waiting}:
        return None
    return {str(k): bool(v) for k, v in decisions.items()}


class DBOSAgent:
    """An agent whose runs are DBOS workflows named ``agentloop.<name>``.

    Build it before `launch`, in every process that may run or recover its runs (DBOS finds a
    workflow's code by its name). `prompt` values must be JSON (a string, usually).

    `rate_limit` (``RateLimit(requests_per_minute=...)``) is shared by every worker: each model
    request waits for a permit from the DBOS queue `rate_limit_queue` (by default
    ``agentloop.rate.<name>``; agents given the same queue share one budget). See `RatePermits`.
    """

    def __init__(
        self,
        agent: Agent[Any],
        *,
        name: str,
        approval_timeout: float = WEEK,
        rate_limit: RateLimit | None = None,
        rate_limit_queue: str | None = None,
    ) -> None:
        module = require_dbos()
        register_permit_workflow()  # every worker may be handed any agent's permits
        queue = rate_limit_queue or f"agentloop.rate.{name}"
        permits = RatePermits(rate_limit, queue) if rate_limit is not None else None
        self.agent: Agent[Any] = durable_agent(agent, DBOSEngine(permits))
        self.name: str = f"agentloop.{name}"
        self.approval_timeout = approval_timeout
        self._dbos: Any = module.DBOS
        self._set_id: Any = module.SetWorkflowID
        durable = self.agent

        async def run_workflow(prompt: Any) -> dict[str, Any]:
            result = await durable.run(prompt)
            while result.pending_approvals:
                decisions = await self._wait_for_decisions(result.pending_approvals)
                if decisions is None:  # no decision in time: the record keeps the state
                    break
                result = await durable.resume(result.state_json(), decisions)
            if durable.approver == "defer":  # nothing waits any more
                await self._dbos.set_event_async(PENDING_EVENT, [])
            return run_record(result)

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
        executor = self._dbos.executor_id
        if executor == _DBOS_DEFAULT_EXECUTOR and not held_executor(executor):
            raise UsageError(
                "start DBOS with agentloop.durable_dbos.launch(config), or give each worker its "
                "own executor_id: under DBOS's default id ('local'), shared by every worker, a "
                "worker that restarts takes over the runs the others are running, and their "
                "steps run twice"
            )
        if workflow_id is None:
            return await self._dbos.start_workflow_async(self._workflow, prompt)
        with self._set_id(workflow_id):
            return await self._dbos.start_workflow_async(self._workflow, prompt)

    async def _wait_for_decisions(
        self, waiting: tuple[PendingApproval, ...]
    ) -> dict[str, bool] | None:
        """Publish the calls waiting and wait for their decisions (None when time runs out).

        A message that does not answer exactly these calls (sent with ``DBOS.send`` rather than
        `approve`, which checks) is skipped.
        """
        await self._dbos.set_event_async(
            PENDING_EVENT, [dataclasses.asdict(call) for call in waiting]
        )
        while True:
            message = await self._dbos.recv_async(
                APPROVALS_TOPIC, timeout_seconds=self.approval_timeout
            )
            if message is None:
                return None
            decisions = _decisions(message, waiting)
            if decisions is not None:
                return decisions
