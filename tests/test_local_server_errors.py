"""A local server that dies is a `LocalServerError`: on start and during a request.

A small Python script (tests/support/fake_llama_server.py) stands in for the server: it is
started through `LocalServer.start` and the launcher's ``--exec`` mode, as llama-server is, and
dies as the real one did (SIGSEGV, an exit code, silence).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentloop import Agent, APIConnectionError, ModelSettings, UsageError
from agentloop._wire.profiles import LLAMA_SERVER_PROFILE
from agentloop.local import LocalModel, LocalServer, LocalServerError, _check, free_port
from agentloop.local import __main__ as cli
from agentloop.local._model import describe_exit

FAKE = Path(__file__).parent / "support" / "fake_llama_server.py"


class FakeLocalServer(LocalServer):
    """A `LocalServer` whose program is the fake server script (everything else is real)."""

    def _require_installed(self) -> None:
        pass

    def _program(self) -> list[str]:
        return ["--exec", sys.executable, str(FAKE)]


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


def fake(weights: Path, mode: str, **options: Any) -> FakeLocalServer:
    options.setdefault("backend", "llama-server")
    options.setdefault("startup_timeout", 30)
    return FakeLocalServer(weights, extra_args=["--fake", mode], n_threads=1, **options)


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


def test_stop_ends_the_program_behind_the_launcher(weights: Path) -> None:
    with fake(weights, "serve") as server:
        pid = int(server.output_tail().split("pid ", 1)[1].split(",", 1)[0])
        assert pid != server._process.pid  # type: ignore[union-attr]  # the launcher's child
        assert _alive(pid)
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the program outlived the launcher"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.mark.anyio
async def test_a_server_that_dies_during_a_request_raises_local_server_error(
    weights: Path,
) -> None:
    with fake(weights, "segfault-on-request") as server:
        agent = Agent(server.model(max_retries=0), settings=ModelSettings(temperature=0.0))
        with pytest.raises(LocalServerError) as caught:
            await agent.run("hi")
    error = caught.value
    assert error.exit_code == -11 and "while it answered a request" in str(error)
    assert error.last_line == "llama_decode: GGML_ASSERT(ok) failed"
    assert isinstance(error.__cause__, APIConnectionError)
    assert not isinstance(error.__cause__, LocalServerError)


@pytest.mark.anyio
async def test_a_server_that_dies_during_a_stream_raises_local_server_error(
    weights: Path,
) -> None:
    with fake(weights, "segfault-on-request") as server:
        agent = Agent(server.model())  # with the default retries
        with pytest.raises(LocalServerError, match=r"-11 \(SIGSEGV\)"):
            await drain(agent)


async def drain(agent: Agent[Any]) -> None:
    async with agent.run_stream("hi") as stream:
        async for _ in stream:
            pass


async def _never_dead() -> LocalServerError | None:
    return None


async def _dead() -> LocalServerError | None:
    return LocalServerError.exited("llama-server", -4, "a\nlast words\n", when="during a test")


@pytest.mark.anyio
async def test_the_model_converts_a_connection_error_only_when_the_process_died() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens
    alive = LocalModel("m", base_url=url, died=_never_dead, max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        await Agent(alive).run("hi")
    assert not isinstance(caught.value, LocalServerError)
    dead = LocalModel("m", base_url=url, died=_dead, max_retries=0)
    with pytest.raises(LocalServerError, match=r"-4 \(SIGILL\) during a test") as converted:
        await Agent(dead).run("hi")
    assert converted.value.last_line == "last words"
    with pytest.raises(LocalServerError, match="SIGILL"):
        await drain(Agent(dead))


def test_describe_exit() -> None:
    assert describe_exit(-11) == "-11 (SIGSEGV)" and describe_exit(-4) == "-4 (SIGILL)"
    assert describe_exit(0) == "0" and describe_exit(-200) == "-200"


def test_the_check_sends_one_request_to_a_working_server(
    weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_check, "LocalServer", functools.partial(fake, weights, "serve"))
    monkeypatch.setattr(cli, "installed", lambda backend: backend == "llama-server")
    assert cli.main(["check"]) == 0
    assert "check llama-server: ok, it answered 'hello' in" in capsys.readouterr().out


def test_the_check_fails_with_the_exit_code_of_a_server_that_crashes(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _check, "LocalServer", functools.partial(fake, weights, "segfault-on-request")
    )
    ok, said = _check.check_backend("llama-server")
    assert not ok and "-11 (SIGSEGV)" in said and "GGML_ASSERT" in said
    monkeypatch.setattr(_check, "LocalServer", functools.partial(fake, weights, "exit-3"))
    ok, said = _check.check_backend("llama-server")
    assert not ok and "exited with code 3 before it answered" in said


def test_the_check_of_a_missing_model_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(**_: Any) -> LocalServer:
        raise UsageError("the SmolLM2 weights are not installed")

    monkeypatch.setattr(_check, "LocalServer", missing)
    assert _check.check_backend("llama-cpp-python") == (
        False,
        "the SmolLM2 weights are not installed",
    )
