"""agentloop.local without a model server: paths, commands and typed errors."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from agentloop import LLAMA_CPP_PROFILE, APIConnectionError, UsageError
from agentloop.local import LocalServer, free_port


def test_a_missing_model_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no model file"):
        LocalServer(tmp_path / "missing.gguf")


def test_the_command_binds_loopback_on_the_chosen_port(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF")
    server = LocalServer(weights, port=4321, n_ctx=512, n_threads=1)
    command = server.command()
    assert command[:3] == [sys.executable, "-m", "llama_cpp.server"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
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
    server = LocalServer(weights, startup_timeout=60)
    with pytest.raises(APIConnectionError, match="exited with code"):
        server.start()
    assert not server.running
