"""A dead local server as a typed error, and the model that raises it."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, Unpack

from .._errors import APIConnectionError, APIError, ProtocolError
from .._messages import ModelRequest, ModelResponse
from .._wire.compatible import OpenAICompatible
from .._wire.models import DeltaHandler, deliver
from .._wire.options import ClientOptions

__all__ = ["LocalModel", "LocalServerError", "describe_exit"]

_CRASH_HINT = (
    "such a crash is often a llama.cpp built for another CPU (pip builds it with native flags): "
    "rebuild it portably with `python -m agentloop.local install`"
)


def describe_exit(code: int) -> str:
    """``-11 (SIGSEGV)`` for a death by a signal, else the code itself."""
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


class LocalServerError(APIConnectionError):
    """The local model server died: it exited before it answered, or while it answered.

    `exit_code` is the process's exit status (negative for a signal: -11 is SIGSEGV, -4 SIGILL)
    or None when it still runs but never answered; `log_tail` the last lines it printed.
    """

    def __init__(self, message: str, *, backend: str, exit_code: int | None, log_tail: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.exit_code = exit_code
        self.log_tail = log_tail

    @classmethod
    def exited(cls, backend: str, exit_code: int, log_tail: str, *, when: str) -> LocalServerError:
        """The error of a server that exited with `exit_code` `when` (e.g. "before it answered")."""
        hint = f"; {_CRASH_HINT}" if exit_code in (-4, -11, 132, 139) else ""
        printed = log_tail.rstrip() or "(nothing)"
        message = (
            f"the local model server ({backend}) exited with code {describe_exit(exit_code)} "
            f"{when}{hint}. Its last lines:\n{printed}"
        )
        return cls(message, backend=backend, exit_code=exit_code, log_tail=log_tail)

    @property
    def summary(self) -> str:
        """One line: which server, how it ended, the last line it printed."""
        if self.exit_code is None:
            how = "did not answer in time"
        else:
            how = f"exited with code {describe_exit(self.exit_code)}"
        last = f"; its last line: {self.last_line}" if self.last_line else ""
        return f"the local model server ({self.backend}) {how}{last}"

    @property
    def last_line(self) -> str:
        """The last non-empty line the server printed ("" if none)."""
        lines = [line for line in self.log_tail.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


DeathCheck = Callable[[], Awaitable["LocalServerError | None"]]
"""Returns the error of a server that has exited, else None (it still runs)."""

_DEAD_SERVER_SYMPTOMS = (APIConnectionError, ProtocolError)


class LocalModel(OpenAICompatible):
    """`OpenAICompatible` for a `LocalServer`: a request that fails because the server process
    died raises `LocalServerError` (exit code, last lines) instead of a bare connection error."""

    def __init__(
        self, model: str, *, base_url: str, died: DeathCheck, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__(model, base_url=base_url, **options)
        self._died = died

    async def request(self, request: ModelRequest) -> ModelResponse:
        try:
            return await super().request(request)
        except _DEAD_SERVER_SYMPTOMS as exc:
            dead = await _dead(exc, self._died)
            if dead is None:
                raise
            raise dead from exc

    def stream(self, request: ModelRequest) -> Any:
        """As `OpenAICompatible.stream`; errors of a dead server become `LocalServerError`."""
        return _GuardedStream(super().stream(request), self._died)


async def _dead(error: APIError, died: DeathCheck) -> LocalServerError | None:
    """The `LocalServerError` of the server process when it has exited, else None (`error`
    stands: the server still runs, or `error` already is one)."""
    if isinstance(error, LocalServerError):
        return None
    return await died()


class _GuardedStream:
    """A model stream whose opening and iteration turn a dead server's errors into
    `LocalServerError`; every other attribute is the inner stream's."""

    def __init__(self, inner: Any, died: DeathCheck) -> None:
        self._inner = inner
        self._died = died

    async def __aenter__(self) -> Self:
        try:
            await self._inner.__aenter__()
        except _DEAD_SERVER_SYMPTOMS as exc:
            dead = await _dead(exc, self._died)
            if dead is None:
                raise
            raise dead from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except _DEAD_SERVER_SYMPTOMS as exc:
            dead = await _dead(exc, self._died)
            if dead is None:
                raise
            raise dead from exc

    async def deliver(self, on_delta: DeltaHandler) -> ModelResponse:
        """The inner stream's `deliver` (its deadline, its speed), a dead server's errors turned."""
        try:
            return await deliver(self._inner, on_delta)
        except _DEAD_SERVER_SYMPTOMS as exc:
            dead = await _dead(exc, self._died)
            if dead is None:
                raise
            raise dead from exc

    def __getattr__(self, name: str) -> Any:  # response, usage, deadline_scope, aclose...
        return getattr(self._inner, name)
