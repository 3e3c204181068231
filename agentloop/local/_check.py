"""The check of an installed server: start it and send it one tiny chat request."""

from __future__ import annotations

import time

import httpx

from .._errors import UsageError
from ._backends import Backend
from ._model import LocalServerError
from ._server import LocalServer

CHECK_TOKENS = 8


def check_backend(backend: Backend, *, startup_timeout: float = 120.0) -> tuple[bool, str]:
    """Start `backend` on the default weights, send one chat request of `CHECK_TOKENS` tokens,
    and say whether a 200 with a message came back (with what, or why not)."""
    try:
        server = LocalServer(backend=backend, n_ctx=1024, startup_timeout=startup_timeout)
    except UsageError as exc:
        return False, str(exc)
    body = {
        "model": server.model_path.stem,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": CHECK_TOKENS,
        "temperature": 0.0,
    }
    try:
        with server:
            started = time.monotonic()
            try:
                with httpx.Client(timeout=120.0, trust_env=False) as client:
                    answer = client.post(f"{server.base_url}/chat/completions", json=body)
            except httpx.TransportError as exc:
                time.sleep(0.5)  # let a crashed process be seen exiting
                dead = server.exit_error()
                return False, str(dead) if dead else f"no answer ({exc!r}):\n{server.log_tail()}"
            took = time.monotonic() - started
            message = _message(answer)
            if message is None:
                snippet = answer.text[:300]
                return False, (
                    f"the server answered {answer.status_code} without a message: {snippet}\n"
                    f"Its last lines:\n{server.log_tail()}"
                )
            threads = f"n_threads {server.n_threads}"
            return True, f"it answered {message!r} in {took:.1f} s ({threads})"
    except LocalServerError as exc:
        return False, str(exc)


def _message(answer: httpx.Response) -> str | None:
    if answer.status_code != 200:
        return None
    try:
        content = answer.json()["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return content if isinstance(content, str) else None
