"""agentloop.local without a model server: paths, commands and typed errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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


def test_the_server_process_exits_when_its_owner_is_killed(tmp_path: Path) -> None:
    """An owner killed with SIGKILL cannot stop its server: the launcher's watchdog does."""
    pid_file = tmp_path / "child.pid"
    owner = (
        "import subprocess, sys, time\n"
        "import os\n"
        "child = subprocess.Popen([sys.executable, '-m', 'agentloop.local._launch',"
        " str(os.getpid()), 'http.server', '0', '--bind', '127.0.0.1'], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", owner])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the owner did not start its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    process.kill()
    process.wait()
    while _alive(child):
        assert time.monotonic() < deadline, "the orphaned server is still running"
        time.sleep(0.1)


def test_a_program_run_by_the_launcher_exits_when_the_owner_is_killed(tmp_path: Path) -> None:
    """``--exec`` mode (llama-server): the launcher ends its program when the owner is gone."""
    pid_file = tmp_path / "program.pid"
    program = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    owner = (
        "import subprocess, sys, time, os\n"
        "subprocess.Popen([sys.executable, '-m', 'agentloop.local._launch', str(os.getpid()),"
        f" '--exec', sys.executable, '-c', {program!r}])\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", owner])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the launcher did not start its program"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    process.kill()
    process.wait()
    while _alive(child):
        assert time.monotonic() < deadline, "the orphaned program is still running"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))
