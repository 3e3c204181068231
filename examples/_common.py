"""What the examples share: which model to run on, and how to say so.

A provider when its key is set (AGENTLOOP_MODEL overrides the model), the local SmolLM2 model
with AGENTLOOP_DEMO=local, else agentloop's fake server playing `script` (AGENTLOOP_DEMO=fake
forces it even with a key).
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


# llama.cpp's chatml-function-calling handler offers the tools only with tool_choice "auto";
# greedy, seeded and capped, so that the tiny model's runs are repeatable and short.
LOCAL_SETTINGS = ModelSettings(
    tool_choice="auto", temperature=0.0, seed=7, max_completion_tokens=300
)


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
    if demo == "local":
        from agentloop.local import LocalServer

        return stack.enter_context(LocalServer(n_ctx=4096)).model(), None, LOCAL
    server = FakeServer(script, model_name="gpt-4o-mini")
    return server.model(), server, OFFLINE
