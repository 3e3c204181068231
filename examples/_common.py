"""What the examples share: which model to run on, and how to say so.

A provider when its key is set (AGENTLOOP_MODEL overrides the model), else the local SmolLM2
model when it is installed (AGENTLOOP_DEMO=local requires it; AGENTLOOP_LOCAL_BACKEND picks
llama-server or llama-cpp-python), else agentloop's fake server playing `script`
(AGENTLOOP_DEMO=fake forces it even with a key). A local server that fails to start is reported
in one line, and the fake server plays instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from agentloop import Model, ModelSettings
from agentloop.testing import FakeServer

OFFLINE = "OFFLINE: agentloop's fake server; the model's answers are SCRIPTED, the tools are real"
LOCAL = "LOCAL: SmolLM2-135M on llama.cpp: real tool calls from a tiny model, not wise ones"


# Greedy and seeded, so that the tiny model's runs are repeatable (LocalServer caps the output).
LOCAL_SETTINGS = ModelSettings(temperature=0.0, seed=7)


def settings_for(where: str) -> ModelSettings | None:
    """The settings an example should use where it runs."""
    return LOCAL_SETTINGS if where == LOCAL else None


def pick_model(
    stack: ExitStack, script: Sequence[Any]
) -> tuple[Model | str, FakeServer | None, str]:
    """The model, the fake server when offline (to check its script was used up), and a note."""
    demo = os.environ.get("AGENTLOOP_DEMO", "")
    if demo not in ("fake", "local"):
        if os.environ.get("OPENROUTER_API_KEY"):
            name = os.environ.get("AGENTLOOP_MODEL", "openrouter:openai/gpt-4o-mini")
            return name, None, f"OpenRouter, {name}"
        if os.environ.get("OPENAI_API_KEY"):
            name = os.environ.get("AGENTLOOP_MODEL", "openai:gpt-4o-mini")
            return name, None, f"OpenAI, {name}"
    if demo != "fake":
        local = start_local_model(stack, required=demo == "local")
        if local is not None:
            return local, None, LOCAL
    server = FakeServer(script, model_name="gpt-4o-mini")
    return server.model(), server, OFFLINE


def start_local_model(stack: ExitStack, *, required: bool = False) -> Model | None:
    """The local model when it is installed and starts (`stack` stops it), else None.

    A server that fails to start is reported in one line (exit code, last line it printed), as
    is a bad AGENTLOOP_LOCAL_BACKEND; with `required` (AGENTLOOP_DEMO=local) that line ends the
    program instead.
    """
    from agentloop import UsageError
    from agentloop.local import LocalServer, LocalServerError, local_available

    if not local_available():
        if required:
            raise SystemExit("AGENTLOOP_DEMO=local: run `python -m agentloop.local install` first")
        return None
    try:
        server = LocalServer(n_ctx=4096, backend=os.environ.get("AGENTLOOP_LOCAL_BACKEND", "auto"))
        print(f"starting the local model server ({server.backend}, SmolLM2-135M-Instruct)...")
        return stack.enter_context(server).model()
    except (LocalServerError, UsageError) as exc:
        line = why_local_failed(exc)
        if required:
            raise SystemExit(line) from None
        print(f"{line}: using the fake server")
        return None


def why_local_failed(exc: Exception) -> str:
    """One line in parentheses: which server failed, how, and the last line it printed."""
    from agentloop.local import LocalServerError

    return f"({exc.summary if isinstance(exc, LocalServerError) else exc})"
