"""Run a module as ``__main__`` and exit when the process that started it dies.

`LocalServer` starts the model server with ``python -m agentloop._local_launch OWNER_PID
llama_cpp.server --model ...``: if the Python process that owns the server is killed (SIGKILL,
a CI timeout, a crash) before it can stop it, the server notices within a second that its
parent is gone and exits, instead of holding a core and a gigabyte of memory as an orphan. The
owner's pid is given on the command line, not read at start: the owner may die first.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

POLL_SECONDS = 0.5


def _watch(owner: int) -> None:
    while os.getppid() == owner:
        time.sleep(POLL_SECONDS)
    os._exit(0)


def main() -> None:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m agentloop._local_launch OWNER_PID MODULE [ARGS...]")
    owner, module = int(sys.argv[1]), sys.argv[2]
    if os.getppid() != owner:
        raise SystemExit(f"agentloop._local_launch: owner {owner} is gone; not starting")
    threading.Thread(target=_watch, args=(owner,), daemon=True).start()
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
