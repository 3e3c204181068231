"""The launcher: the server process and what it runs end when their owner is killed or stopped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from support.local_fakes import alive, fake


def test_the_server_process_exits_when_its_owner_is_killed(tmp_path: Path) -> None:
    """An owner killed with SIGKILL cannot stop its server: the launcher's watchdog does."""
    pid_file = tmp_path / "child.pid"
    owner = (
        "import subprocess, sys, time\n"
        "import os\n"
        "child = subprocess.Popen([sys.executable, '-m', 'agentloop.local._launch',"
        " str(os.getpid()), 'http.server', '0', '--bind', '127.0.0.1'], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    _kill_owner_then_wait_for_the_child(owner, pid_file)


def test_a_program_run_by_the_launcher_exits_when_the_owner_is_killed(tmp_path: Path) -> None:
    """``--exec`` mode (llama-server): the launcher ends its program when the owner is gone."""
    pid_file = tmp_path / "program.pid"
    program = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    owner = (
        "import subprocess, sys, time, os\n"
        "subprocess.Popen([sys.executable, '-m', 'agentloop.local._launch', str(os.getpid()),"
        f" '--exec', sys.executable, '-c', {program!r}])\n"
        "time.sleep(60)\n"
    )
    _kill_owner_then_wait_for_the_child(owner, pid_file)


def test_stop_ends_the_program_behind_the_launcher(weights: Path) -> None:
    with fake(weights, "serve") as server:
        pid = int(server.output_tail().split("pid ", 1)[1].split(",", 1)[0])
        assert pid != server._process.pid  # type: ignore[union-attr]  # the launcher's child
        assert alive(pid)
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, "the program outlived the launcher"
        time.sleep(0.05)


def _kill_owner_then_wait_for_the_child(owner: str, pid_file: Path) -> None:
    """Run `owner` (Python code whose child writes its pid to `pid_file`), kill it, and wait
    for the child to end on its own: it must not outlive its owner."""
    process = subprocess.Popen([sys.executable, "-c", owner])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the owner did not start its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert alive(child)
    process.kill()
    process.wait()
    while alive(child):
        assert time.monotonic() < deadline, "the orphaned child is still running"
        time.sleep(0.1)
