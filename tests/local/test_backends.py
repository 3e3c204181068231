"""agentloop.local's two backends without running them: the choice, the command lines, the
threads, the model's profile and default settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agentloop import LLAMA_CPP_PROFILE, ModelSettings, UsageError
from agentloop._wire.profiles import LLAMA_SERVER_PROFILE
from agentloop.local import LocalModel, LocalServer, _backends, _server, default_threads
from agentloop.local._backends import choose_backend, server_arguments


def test_auto_prefers_llama_server_then_llama_cpp_python() -> None:
    assert choose_backend("auto", ("llama-server", "llama-cpp-python")) == "llama-server"
    assert choose_backend("auto", ("llama-cpp-python",)) == "llama-cpp-python"
    assert choose_backend("auto", ("llama-server",)) == "llama-server"
    # An explicit choice stands even when it is not installed (start() then says so).
    assert choose_backend("llama-cpp-python", ()) == "llama-cpp-python"


def test_auto_with_nothing_installed_names_the_install_command() -> None:
    with pytest.raises(UsageError, match=r"python -m agentloop\.local install"):
        choose_backend("auto", ())
    with pytest.raises(UsageError, match="backend must be one of"):
        choose_backend("ollama", ("llama-server",))


def test_auto_looks_at_what_is_installed(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backends, "installed", lambda backend: backend == "llama-cpp-python")
    assert LocalServer(weights).backend == "llama-cpp-python"
    monkeypatch.setattr(_backends, "installed", lambda backend: True)
    assert LocalServer(weights).backend == "llama-server"
    monkeypatch.setattr(_backends, "installed", lambda backend: False)
    with pytest.raises(UsageError, match="no local model server is installed"):
        LocalServer(weights)


def test_a_backend_that_is_not_installed_is_a_usage_error_at_start(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_server, "installed", lambda backend: False)
    server = LocalServer(weights, backend="llama-server")
    with pytest.raises(UsageError, match=r"llama-server is not installed: run `python -m"):
        server.start()
    assert not server.running


def test_the_llama_server_command_line(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = Path("/opt/llama/bin/llama-server")
    monkeypatch.setattr(_server, "llama_server_binary", lambda: binary)
    server = LocalServer(weights, backend="llama-server", port=4321, n_ctx=2048, n_threads=3,
                         extra_args=["--verbose"])  # fmt: skip
    command = server.command()
    launcher = [sys.executable, "-m", "agentloop.local._launch", str(os.getpid())]
    assert command == [
        *launcher, "--exec", str(binary),
        "--model", str(weights), "--host", "127.0.0.1", "--port", "4321", "--jinja",
        "--ctx-size", "2048", "--parallel", "1", "--threads", "3", "--threads-batch", "3",
        "--verbose",
    ]  # fmt: skip


def test_the_llama_cpp_python_command_line(weights: Path) -> None:
    server = LocalServer(weights, backend="llama-cpp-python", port=4321, n_threads=2)
    launcher = [sys.executable, "-m", "agentloop.local._launch", str(os.getpid())]
    assert server.command() == [
        *launcher, "llama_cpp.server",
        "--model", str(weights), "--host", "127.0.0.1", "--port", "4321",
        "--chat_format", "chatml-function-calling", "--n_ctx", "4096",
        "--n_threads", "2", "--n_threads_batch", "2",
    ]  # fmt: skip


def test_server_arguments_always_bind_loopback() -> None:
    for backend in ("llama-server", "llama-cpp-python"):
        args = server_arguments(backend, model_path=Path("m.gguf"), port=1, n_ctx=1, n_threads=1)
        assert args[args.index("--host") + 1] == "127.0.0.1"


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 2), (4, 3), (8, 7), (64, 8)])
def test_default_threads_leave_one_core_free(cores: int, threads: int) -> None:
    assert default_threads(cores) == threads


def test_the_default_threads_follow_the_cores_available(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_backends, "available_cores", lambda: 4)
    assert LocalServer(weights, backend="llama-cpp-python").n_threads == 3
    assert LocalServer(weights, backend="llama-cpp-python", n_threads=2).n_threads == 2
    with pytest.raises(UsageError, match="n_threads"):
        LocalServer(weights, backend="llama-cpp-python", n_threads=0)


def test_a_cgroup_cpu_quota_bounds_the_cores(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    assert _backends._cgroup_quota(quota) == 2  # 1.5 cores, rounded up
    quota.write_text("max 100000\n")
    assert _backends._cgroup_quota(quota) is None
    assert _backends._cgroup_quota(tmp_path / "missing") is None
    assert _backends.available_cores() >= 1


def test_each_backend_gets_its_profile_and_an_output_cap(weights: Path) -> None:
    server = LocalServer(weights, backend="llama-cpp-python", max_tokens=100)
    model = server.model()
    assert isinstance(model, LocalModel) and model.profile == LLAMA_CPP_PROFILE
    assert model._settings == ModelSettings(max_completion_tokens=100)
    assert model.name == "tiny" and not model.learns
    assert "Connection" not in model.default_headers
    fast = LocalServer(weights, backend="llama-server")
    assert fast.model().profile == LLAMA_SERVER_PROFILE
    # One connection per request: llama-server can hang on a stream over a reused connection.
    assert fast.model().default_headers["Connection"] == "close"
    headers = fast.model(headers={"X-Trace": "1"}).default_headers
    assert headers["Connection"] == "close" and headers["X-Trace"] == "1"
    assert fast.model(settings=ModelSettings(temperature=0.0))._settings == ModelSettings(
        temperature=0.0
    )


def test_a_template_without_tools_gets_prompted_tools(weights: Path) -> None:
    server = LocalServer(weights, backend="llama-server")
    server.supports_tools = False  # what /props said (see the fake-server tests)
    assert server.model().profile == LLAMA_SERVER_PROFILE.replace(tool_mode="prompted")
    server.supports_tools = True
    assert server.model().profile == LLAMA_SERVER_PROFILE


def test_repr_names_the_backend(weights: Path) -> None:
    assert "backend='llama-cpp-python'" in repr(LocalServer(weights, backend="llama-cpp-python"))
