"""Ray Data on a two-node cluster on this machine: the worker node killed mid-run loses no row and
doubles none (the blocks it held run again on the head), and one rate limit holds for both nodes.

The head and the worker are started with ``ray start --block``, each in its own session (so a
signal to its process group reaches the raylet and every worker it spawned), with a temp dir
and a token of their own; both groups are killed at the end, whatever happens. Ray replaces
127.0.0.1 with this machine's own address for its nodes, so its traffic stays on the machine
but not on loopback; the agents' requests go to a fake chat server on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from agentloop import RateLimit  # noqa: E402
from agentloop.ray_data import map_agent, shared_rate_limit  # noqa: E402

from .agents import placed_extraction_agent, prompt_of  # noqa: E402
from .test_ray_limit import busiest_second, most_allowed  # noqa: E402

_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS.parent / "tools"))

from fakechat import answer  # noqa: E402
from faultserver import FaultServer, Plan, Request  # noqa: E402

PER_MINUTE = 4800  # 80 requests a second for both nodes together (4 actors unshared: 320)
_DEADLINE = 180.0  # seconds for the run; then both nodes are killed
_MARK = "AGENTLOOP_TEST_RAY_NODE"
_RAY = str(Path(sys.executable).parent / "ray")
_STARTED = "Ray runtime started"
# A dead node is declared dead after 3 failed health checks 0.5 s apart (15 s by default).
_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """One ``ray start --block`` and every process it starts, found by a mark in their
    environment (Ray's workers leave its process group), its output in `log`."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.mark = f"{_MARK}={secrets.token_hex(8)}".encode()
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [_RAY, "start", "--block", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, _MARK: self.mark.decode().split("=", 1)[1]},
                start_new_session=True,
            )

    def wait_started(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while _STARTED not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"ray start failed:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL to the node's processes: the raylet, its object store, its workers."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self._marked():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def _marked(self) -> list[int]:
        found: list[int] = []
        for proc in Path("/proc").glob("[0-9]*"):
            with suppress(OSError):
                if self.mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
        return found


class Cluster:
    """A head (2 CPUs, the driver's node) and a worker node (2 CPUs), on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = f"127.0.0.1:{_free_port()}"
        path = os.pathsep.join(p for p in (str(_TESTS), os.environ.get("PYTHONPATH")) if p)
        # Ray asks for a token on every connection; this cluster's is made here, for its nodes
        # and for the driver (the tests's process).
        token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.env = {**os.environ, **_ENV, **token, "PYTHONPATH": path}
        self.nodes: list[Node] = []

    def start(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._node("head", ["--head", f"--port={port}", "--include-dashboard=false"])
        self._node("worker", [f"--address={self.address}"])

    def _node(self, name: str, args: list[str]) -> None:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats"]
        common += [
            f"--temp-dir={self.root / name}",
            f"--dashboard-agent-listen-port={_free_port()}",
        ]
        node = Node([*args, *common], self.root / f"{name}.log", self.env)
        self.nodes.append(node)
        node.wait_started()

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()


@contextmanager
def _auth_from(env: dict[str, str]) -> Iterator[None]:
    """This process's Ray reads its token settings from `env` (they are cached: reloaded the
    way Ray's own tests do), and the settings it had after."""
    helpers = importlib.import_module("ray._private.authentication_test_utils")
    reset_auth_token_state = helpers.reset_auth_token_state

    names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: env[name] for name in names if name in env})
    reset_auth_token_state()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_auth_token_state()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="ray2-", dir="/tmp"))  # short: Ray's socket paths
    cluster = Cluster(root)
    try:
        cluster.start()
        with _auth_from(cluster.env):
            ray.init(address=cluster.address, _node_ip_address="127.0.0.1", log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            try:
                yield cluster
            finally:
                ray.shutdown()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _alive_nodes() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n["Alive"]]


class Server(FaultServer):
    """The fake chat answers, in this process, after `latency`; each request recorded."""

    def __init__(self, latency: float) -> None:
        super().__init__(self._answer)
        self.latency = latency

    def _answer(self, request: Request) -> Plan:
        return replace(answer(request.json())[2], header_delay=self.latency)

    def keys_from(self, node: str) -> list[str]:
        return [_key(r) for r in self.requests if r.headers.get("x-node") == node]


def _key(request: Request) -> str:
    return answer(request.json())[0]


def _worker_node() -> str:
    """The id of the node that is not the driver's, once both are up."""
    head = ray.get_runtime_context().get_node_id()
    for _ in range(50):
        others = [node for node in _alive_nodes() if node != head]
        if others:
            return others[0]
        time.sleep(0.2)
    raise AssertionError("the worker node never joined")


def _run_and_kill(cluster: Cluster, out: Any, server: Server, worker: str) -> list[dict[str, Any]]:
    """The dataset's rows, the worker node killed once it has served 100 requests."""

    def kill_when_busy() -> None:
        while len(server.keys_from(worker)) < 100:
            time.sleep(0.05)
        cluster.nodes[1].kill()

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    watchdog = threading.Timer(_DEADLINE, cluster.stop)  # a hung run fails, not hangs
    watchdog.start()
    try:
        rows = list(out.iter_rows())
    finally:
        watchdog.cancel()
    killer.join(1)
    assert not killer.is_alive(), "the worker node never served 100 rows"
    return rows


def test_a_worker_node_killed_mid_run_loses_no_row_and_doubles_none(cluster: Cluster) -> None:
    """Four actors over both nodes, one budget for all (a limiter actor on the head)."""
    worker = _worker_node()
    count = 1200
    items = [{"id": f"d{i}", "text": "word " * (i % 17 + 1)} for i in range(count)]
    limit = shared_rate_limit(RateLimit(requests_per_minute=PER_MINUTE))
    server = Server(latency=0.05)
    with server:
        factory = partial(placed_extraction_agent, server.base_url, limit)
        ds = ray.data.from_items(items, override_num_blocks=40)
        out = map_agent(ds, factory, prompt=prompt_of, actors=4, concurrency=8, batch_size=15)
        started = time.monotonic()
        rows = _run_and_kill(cluster, out, server, worker)
        elapsed = time.monotonic() - started
        requests = list(server.requests)
    asked = Counter(_key(r) for r in requests)
    print(f"{count} rows in {elapsed:.1f} s; {sum(asked.values()) - count} asked again")
    assert worker not in _alive_nodes()
    got = Counter(str(row["id"]) for row in rows)
    assert got == Counter(item["id"] for item in items)  # every row once: none lost, none doubled
    assert [row for row in rows if row["error"] is not None] == []
    for row in rows:
        assert json.loads(row["output"]) == {"id": row["id"], "words": int(row["id"][1:]) % 17 + 1}
    assert set(asked) == set(got)
    assert max(asked.values()) >= 2  # the rows lost with the node were asked again
    assert busiest_second([r.at for r in requests]) <= most_allowed(PER_MINUTE)
