"""`LocalServer` without a model server: paths, commands, and typed errors when it dies on start."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from support.local_fakes import fake

from agentloop import LLAMA_CPP_PROFILE, Agent, APIConnectionError, UsageError
from agentloop._wire.profiles import LLAMA_SERVER_PROFILE
from agentloop.local import LocalServer, LocalServerError, free_port


def test_a_missing_model_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no model file"):
        LocalServer(tmp_path / "missing.gguf")


def test_the_command_binds_loopback_on_the_chosen_port(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF")
    server = LocalServer(weights, backend="llama-cpp-python", port=4321, n_ctx=512, n_threads=1)
    command = server.command()
    launcher = [sys.executable, "-m", "agentloop.local._launch", str(os.getpid())]
    assert command[:5] == [*launcher, "llama_cpp.server"]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--host"] == "127.0.0.1" and options["--port"] == "4321"
    assert options["--chat_format"] == "chatml-function-calling"
    assert options["--n_ctx"] == "512" and options["--model"] == str(weights)
    assert server.base_url == "http://127.0.0.1:4321/v1"
    model = server.model()
    assert model.profile == LLAMA_CPP_PROFILE and model.name == "tiny"
    assert "stopped" in repr(server)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 0 < port < 65536


def test_a_server_that_exits_early_raises_with_its_output(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    weights = tmp_path / "broken.gguf"
    weights.write_bytes(b"not a gguf file")
    server = LocalServer(weights, backend="llama-cpp-python", startup_timeout=60)
    with pytest.raises(APIConnectionError, match="exited with code"):
        server.start()
    assert not server.running


def test_a_server_that_segfaults_on_start_raises_with_its_code_and_lines(weights: Path) -> None:
    server = fake(weights, "segfault-on-start")
    with pytest.raises(LocalServerError) as caught:
        server.start()
    error = caught.value
    assert isinstance(error, APIConnectionError)  # what callers caught before
    assert error.exit_code == -signal.SIGSEGV and error.backend == "llama-server"
    assert "illegal instruction ahead" in error.log_tail and "loading model" in error.log_tail
    assert error.last_line == "ggml_cpu: illegal instruction ahead"
    message = str(error)
    assert message.startswith(
        "the local model server (llama-server) exited with code -11 (SIGSEGV) before it answered"
    )
    assert "python -m agentloop.local install" in message  # a crash: rebuild portably
    assert message.endswith("ggml_cpu: illegal instruction ahead")
    assert error.summary == (
        "the local model server (llama-server) exited with code -11 (SIGSEGV); "
        "its last line: ggml_cpu: illegal instruction ahead"
    )
    assert not server.running


def test_a_server_that_exits_with_a_code_raises_without_the_crash_hint(weights: Path) -> None:
    with pytest.raises(LocalServerError, match=r"exited with code 3 before it answered") as caught:
        fake(weights, "exit-3", backend="llama-cpp-python").start()
    assert caught.value.exit_code == 3 and caught.value.backend == "llama-cpp-python"
    assert caught.value.last_line == "error: invalid argument: --bogus"
    assert "agentloop.local install" not in str(caught.value)


def test_a_server_that_never_answers_raises_after_the_startup_timeout(weights: Path) -> None:
    server = fake(weights, "silent", startup_timeout=1.0)
    with pytest.raises(LocalServerError, match="did not answer") as caught:
        server.start()
    assert caught.value.exit_code is None and "mode silent" in caught.value.log_tail
    assert caught.value.summary.startswith("the local model server (llama-server) did not answer")
    assert not server.running  # stopped, not orphaned


@pytest.mark.anyio
async def test_a_running_server_reads_props_and_serves_the_model(weights: Path) -> None:
    async with fake(weights, "serve") as server:
        assert server.running and server.supports_tools is False
        model = server.model()
        assert model.profile == LLAMA_SERVER_PROFILE.replace(tool_mode="prompted")
        result = await Agent(model).run("hi")
        assert result.output == "hello"
        assert "threads 1" in server.output_tail()  # the options reached the program
    assert not server.running
