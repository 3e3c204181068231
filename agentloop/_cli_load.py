"""What the CLI loads: Python objects named on the command line, and the model to talk to."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import UsageError
from ._tools import Tool
from ._wire.compatible import OpenAICompatible
from ._wire.models import Model, infer_model

__all__ = ["default_model_name", "load_object", "load_tools", "open_model"]


def _module(name: str) -> ModuleType:
    """A module by dotted name, or by the path of a ``.py`` file."""
    if name.endswith(".py") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no such Python file: {name!r}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {name!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules of the current folder
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import module {name!r}: {exc}") from None


def load_object(spec: str) -> Any:
    """``module:attribute`` or ``path/to/file.py:attribute``."""
    module_name, colon, attribute = spec.rpartition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(f"{spec!r} must look like 'module:name' or 'file.py:name'")
    module = _module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attribute!r}") from None


def load_tools(spec: str) -> list[Tool]:
    """``module`` (every `Tool` it defines) or ``module:name,name`` (those, functions allowed)."""
    module_name, colon, names = spec.rpartition(":")
    if not colon:
        module = _module(spec)
        found = [value for value in vars(module).values() if isinstance(value, Tool)]
        if not found:
            raise UsageError(f"module {spec!r} defines no @tool; name functions: '{spec}:f,g'")
        return found
    return [_as_tool(load_object(f"{module_name}:{name.strip()}")) for name in names.split(",")]


def _as_tool(value: Any) -> Tool:
    from ._tools import tool

    if isinstance(value, Tool):
        return value
    if callable(value):
        return tool(value)
    raise UsageError(f"{value!r} is neither a @tool nor a function")


def default_model_name() -> str:
    """A provider when its key is set, else the local model."""
    if os.environ.get("OPENROUTER_API_KEY"):
        return "openrouter:openai/gpt-4o-mini"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai:gpt-4o-mini"
    return "local"


def open_model(
    stack: ExitStack, name: str | None, base_url: str | None, api_key_env: str | None
) -> Model:
    """The model of the command line; a local server it starts is stopped by `stack`."""
    name = name or default_model_name()
    if base_url:
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not key:
            raise UsageError(f"--api-key-env names {api_key_env}, which is not set")
        return OpenAICompatible(name, base_url=base_url, api_key=key)
    if name == "local":
        from .local import LocalServer, LocalServerError, local_available

        if not local_available():
            raise UsageError(
                "no API key is set and the local model is not installed: set OPENROUTER_API_KEY "
                "or OPENAI_API_KEY, or run `python -m agentloop.local install` once"
            )
        print("starting the local model (SmolLM2-135M-Instruct on llama.cpp)...", file=sys.stderr)
        try:
            return stack.enter_context(LocalServer(n_ctx=4096)).model()
        except LocalServerError as exc:  # one line, not a traceback
            raise UsageError(f"{exc.summary} (`python -m agentloop.local check`)") from exc
    return infer_model(name)
