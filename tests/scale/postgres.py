"""A throwaway PostgreSQL server for the crash test, from Debian's `postgresql` package.

It runs in a temporary directory on a free port of 127.0.0.1, as the ``postgres`` user when the
tests run as root (initdb refuses root), and is stopped and deleted afterwards. `local_postgres`
skips the test, saying why, when the binaries or the user are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(*command: str) -> None:
    """Run a PostgreSQL command, as the postgres user when we are root."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, *command], check=True, capture_output=True)


@contextmanager
def local_postgres() -> Iterator[str]:
    """A ``postgresql://`` URL of a fresh server (its database is created by DBOS)."""
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
    folder = Path(tempfile.mkdtemp(prefix="agentloop-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        os.chown(folder, user.pw_uid, user.pw_gid)
    _run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    _run(pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/agentloop_crash"
    finally:
        _run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
