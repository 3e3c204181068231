"""DBOS workers with executor ids of their own: `launch`, and the lease that keeps an id single.

DBOS tells its workers apart by an *executor id* (the config's ``executor_id``, else the
``DBOS__VMID`` variable, else ``"local"``). At launch a worker resumes every unfinished run
recorded under its own id. Two live workers under one id (``"local"``, when nobody set one) are
one worker to DBOS: when either restarts, it takes over the runs the other is still running, and
their steps run twice. A worker restarted under a *new* id resumes nothing of the dead one's.

`launch` gives each worker an id no live worker holds, kept for its lifetime by a lease on the
system database: a PostgreSQL advisory lock held by a connection of its own (released when the
process dies: at once when it is killed, within about half a minute when its machine vanishes),
or a lock on a file beside a SQLite database. An id that is given (``executor_id=``, the config,
``DBOS__VMID``) and held by a live worker is refused with a `UsageError` before DBOS starts. With
none given the id is ``<host name>-<n>``, the lowest `n` free.

Then the worker adopts the orphans: the unfinished runs of every other id that no live worker
holds (its worker is gone) go back to DBOS's queue, for the live workers to resume. So whichever
worker starts next, on whatever machine, resumes the runs of the workers that died.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ._errors import UsageError
from ._log import get_logger

__all__ = ["held_executor", "launch"]

_log = get_logger()
_SLOTS = 1000
_TRIES = 3  # a given id may be held for a moment by a worker adopting its orphans
# Server-side keepalives of the lease's connection: a vanished machine frees its id within ~25 s.
_KEEPALIVES = (
    "tcp_keepalives_idle = 10",
    "tcp_keepalives_interval = 5",
    "tcp_keepalives_count = 3",
)
_held: dict[tuple[str, str], tuple[str, Leases]] = {}  # (database, application) -> id, leases
_launched: set[str] = set()  # the ids `launch` started DBOS under in this process


def _key(scope: str, executor_id: str) -> bytes:
    return hashlib.sha256(f"agentloop.executor\0{scope}\0{executor_id}".encode()).digest()


class _PostgresLeases:
    """Advisory locks, on a connection of their own (kept open while this process lives)."""

    def __init__(self, url: str, scope: str, schema: str) -> None:
        self._scope = scope
        self._connection: Any = _connect(url, schema)
        for setting in _KEEPALIVES:
            self._connection.execute(f"SET {setting}")

    def _lock(self, function: str, executor_id: str) -> bool:
        key = int.from_bytes(_key(self._scope, executor_id)[:8], "big", signed=True)
        return bool(self._connection.execute(f"SELECT {function}(%s)", (key,)).fetchone()[0])

    def hold(self, executor_id: str) -> bool:
        """Hold `executor_id`; False if a live process holds it."""
        return self._lock("pg_try_advisory_lock", executor_id)

    def release(self, executor_id: str) -> None:
        self._lock("pg_advisory_unlock", executor_id)

    def close(self) -> None:
        self._connection.close()


def _connect(url: str, schema: str) -> Any:
    """A connection to the system database, created (by DBOS) first if it does not exist."""
    psycopg: Any = importlib.import_module("psycopg")
    sqlalchemy: Any = importlib.import_module("sqlalchemy")
    conninfo = sqlalchemy.make_url(url).set(drivername="postgresql")
    conninfo = conninfo.render_as_string(hide_password=False)
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError:  # no database yet (DBOS says so if it is something else)
        importlib.import_module("dbos").DBOS.migrate(url, schema=schema)
        return psycopg.connect(conninfo, autocommit=True)


class _FileLeases:
    """Locks on files beside a SQLite database (``<database>.executor-<hash>.lock``)."""

    def __init__(self, database: Path, scope: str) -> None:
        self._database = database
        self._scope = scope
        self._files: dict[str, IO[str]] = {}

    def hold(self, executor_id: str) -> bool:
        import fcntl

        digest = _key(self._scope, executor_id).hex()[:16]
        lock = self._database.with_name(f"{self._database.name}.executor-{digest}.lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        self._files[executor_id] = lock
        return True

    def release(self, executor_id: str) -> None:
        self._files.pop(executor_id).close()

    def close(self) -> None:
        for executor_id in list(self._files):
            self.release(executor_id)


Leases = _PostgresLeases | _FileLeases


def _leases(url: str, scope: str, schema: str) -> Leases | None:
    """Where ids are leased for this system database; None for an in-memory SQLite one."""
    if url.startswith("sqlite"):
        database = importlib.import_module("sqlalchemy").make_url(url).database
        if not database or database == ":memory:" or os.name != "posix":
            return None
        return _FileLeases(Path(database).resolve(), scope)
    return _PostgresLeases(url, scope, schema)


def _take(leases: Leases, app: str, given: str | None) -> str:
    """Hold `given` (refused if a live worker holds it), or the host's lowest free slot."""
    if given is not None:
        for attempt in range(_TRIES):
            if leases.hold(given):
                return given
            if attempt + 1 < _TRIES:
                time.sleep(1.0)
        raise UsageError(
            f"the DBOS executor id {given!r} is held by a live worker of {app!r} on this "
            "system database: give each worker its own (executor_id=, the config's "
            "executor_id or DBOS__VMID), or none to have one chosen"
        )
    host = socket.gethostname() or "worker"
    for slot in range(_SLOTS):
        if leases.hold(f"{host}-{slot}"):
            return f"{host}-{slot}"
    raise UsageError(f"no free DBOS executor id: {_SLOTS} workers on {host!r} are live")


def _lease(config: Mapping[str, Any], given: str | None) -> tuple[str, Leases | None]:
    """The id this worker runs as, held for the process's lifetime, and the leases it is in."""
    url, app = str(config["system_database_url"]), str(config["name"])
    if (url, app) in _held and given in (None, _held[url, app][0]):
        return _held[url, app]  # launched again in this process
    schema = str(config.get("dbos_system_schema") or "dbos")
    leases = _leases(url, f"{app}\0{schema}", schema)
    if leases is None:
        return given or "local", None
    try:
        _held[url, app] = (_take(leases, app, given), leases)
    except BaseException:
        leases.close()
        raise
    return _held[url, app]


def _adopt_orphans(dbos: Any, leases: Leases, app: str) -> None:
    """Send the unfinished runs of the ids no live worker holds back to DBOS's queues."""
    own, version = str(dbos.executor_id), str(dbos.application_version)
    query: dict[str, Any] = {"status": "PENDING", "app_version": version, "application_name": app}
    query.update(load_input=False, load_output=False)
    found = {w.executor_id for w in dbos.list_workflows(**query)} - {own, None}
    for executor in sorted(found):
        if not leases.hold(executor):
            continue  # alive
        try:
            orphans = dbos.list_workflows(**query, executor_id=executor)
            for run in orphans:
                dbos.resume_workflow(run.workflow_id, queue_name=run.queue_name)
            _log.info("dbos_orphans_adopted", executor_id=executor, runs=len(orphans))
        finally:
            leases.release(executor)


def launch(config: Mapping[str, Any], *, executor_id: str | None = None) -> str:
    """``DBOS(config=config)`` and ``DBOS.launch()``, as a worker with an executor id of its own.

    The id is `executor_id`, else the config's ``executor_id``, else ``DBOS__VMID``; held by a
    live worker of the same application on the same system database, it is a `UsageError` and
    DBOS does not start. With none given it is ``<host name>-<n>``, the lowest `n` that no live
    worker holds. At launch the worker resumes its id's unfinished runs (DBOS does) and those of
    the ids whose workers are gone. With a ``conductor_key``, DBOS Conductor does all of this.
    Returns the id. Build every `DBOSAgent` first.
    """
    dbos: Any = importlib.import_module("dbos").DBOS
    if "system_database_url" not in config or "name" not in config:
        raise UsageError("launch needs the config's 'name' and 'system_database_url'")
    settings, leases = dict(config), None
    given = executor_id or settings.get("executor_id") or os.environ.get("DBOS__VMID") or None
    if not settings.get("conductor_key"):
        settings["executor_id"], leases = _lease(settings, given)
    elif executor_id is not None:
        raise UsageError("with a conductor_key, DBOS Conductor chooses the executor ids")
    dbos(config=settings)
    dbos.launch()
    if leases is not None:
        _adopt_orphans(dbos, leases, str(settings["name"]))
    _launched.add(str(dbos.executor_id))
    return str(dbos.executor_id)


def held_executor(executor_id: str) -> bool:
    """Whether this process launched DBOS through `launch` under `executor_id`."""
    return executor_id in _launched
