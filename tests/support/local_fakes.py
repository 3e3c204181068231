"""A fake llama-server (tests/support/fake_llama_server.py) started like the real one.

A small Python script (tests/support/fake_llama_server.py) stands in for the server: it is
started through `LocalServer.start` and the launcher's ``--exec`` mode, as llama-server is, and
dies as the real one did (SIGSEGV, an exit code, silence).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from agentloop.local import LocalServer

FAKE = Path(__file__).with_name("fake_llama_server.py")


class FakeLocalServer(LocalServer):
    """A `LocalServer` whose program is the fake server script (everything else is real)."""

    def _require_installed(self) -> None:
        pass

    def _program(self) -> list[str]:
        return ["--exec", sys.executable, str(FAKE)]


def fake(weights: Path, mode: str, **options: Any) -> FakeLocalServer:
    options.setdefault("backend", "llama-server")
    options.setdefault("startup_timeout", 30)
    return FakeLocalServer(weights, extra_args=["--fake", mode], n_threads=1, **options)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))
