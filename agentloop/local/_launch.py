"""Run a server as a child of its owner, and end it when the owner dies.

`LocalServer` starts the model server through this module:

- ``python -m agentloop.local._launch OWNER_PID MODULE [ARGS...]`` runs a Python module as
  ``__main__`` in this process (llama-cpp-python's ``llama_cpp.server``); a thread watches the
  owner and exits the process when it is gone.
- ``python -m agentloop.local._launch OWNER_PID --exec PROGRAM [ARGS...]`` runs an executable
  (``llama-server``) as a child; it dies with this process (``PR_SET_PDEATHSIG`` on Linux), is
  terminated when the owner is gone, receives the signals this process receives, and its exit
  status becomes this process's own, a death by a signal included (a segfault shows as -11).

If the Python process that owns the server is killed (SIGKILL, a CI timeout, a crash) before it
can stop it, the server notices within a second that its parent is gone and exits, instead of
holding a core and a gigabyte of memory as an orphan. The owner's pid is given on the command
line, not read at start: the owner may die first.
"""

from __future__ import annotations

import ctypes
import os
import resource
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1
USAGE = "usage: python -m agentloop.local._launch OWNER_PID (MODULE | --exec PROGRAM) [ARGS...]"


def _watch(owner: int, on_gone: Callable[[], None]) -> None:
    while os.getppid() == owner:
        time.sleep(POLL_SECONDS)
    on_gone()


def _die_with_parent() -> None:  # pragma: no cover (runs in the child between fork and exec)
    """Ask Linux to kill this (child) process when its parent, the launcher, dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _exit_like(returncode: int) -> None:
    """Exit with `returncode`, re-raising the signal a child died of (without a core file)."""
    if returncode < 0:
        number = -returncode
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        time.sleep(1.0)  # the signal is delivered before this ends; an ignored one falls through
        returncode = 128 + number
    sys.exit(returncode)


def run_program(owner: int, argv: Sequence[str]) -> None:
    """Run `argv` as a child until it exits, then exit as it did."""
    child = subprocess.Popen(argv, preexec_fn=_die_with_parent)

    def forward(number: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(number)

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, forward)

    def owner_gone() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(5.0)
            except subprocess.TimeoutExpired:
                child.kill()
        os._exit(0)

    threading.Thread(target=_watch, args=(owner, owner_gone), daemon=True).start()
    _exit_like(child.wait())


def main() -> None:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        raise SystemExit(USAGE)
    owner = int(sys.argv[1])
    if os.getppid() != owner:
        raise SystemExit(f"agentloop.local._launch: owner {owner} is gone; not starting")
    if sys.argv[2] == "--exec":
        if len(sys.argv) < 4:
            raise SystemExit(USAGE)
        run_program(owner, sys.argv[3:])
        return
    module = sys.argv[2]
    threading.Thread(target=_watch, args=(owner, lambda: os._exit(0)), daemon=True).start()
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
