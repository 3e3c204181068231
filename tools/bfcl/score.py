"""Scoring with BFCL's own checker (``bfcl_eval.eval_checker.ast_eval.ast_checker``), as BFCL's
evaluation runner calls it, never with a checker of ours.

The checker module imports ``bfcl_eval.constants.model_config`` for one thing: the model's
``underscore_to_dot`` flag (``MODEL_CONFIG_MAPPING[name].underscore_to_dot``). That module imports
every model handler BFCL has and their SDKs (openai, anthropic, google, ...), which bfcl-eval
installed with ``--no-deps`` does not have. `load_checker` puts a stub of that one module in
``sys.modules`` first: a mapping with a single entry, `MODEL_NAME`, whose ``underscore_to_dot`` is
True, as in BFCL's entries for OpenAI's function-calling models (the tools were offered with
underscores for dots, see `convert`).

The rest is BFCL's runner's rules (``eval_runner.py``):

- AST categories: an output that could not be decoded is wrong (``ast_decoder:decoder_failed``);
  a decoded one goes to ``ast_checker(functions, calls, possible_answer, Language.PYTHON,
  category, model_name)``, with the functions as the dataset has them (without the hint);
- irrelevance: right when the output holds no call, including when it could not be decoded
  (BFCL's ``irrelevance_error:decoder_success`` otherwise).
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cases import Case

MODEL_NAME = "agentloop-bfcl"  # no underscore: the checker reads ``_`` in the name as ``/``

Checker = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    correct: bool
    error_type: str | None = None
    errors: list[Any] = field(default_factory=list)


def _model_config_stub() -> types.ModuleType:
    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.__doc__ = "Stub (tools/bfcl/score.py): only the flag the AST checker reads."
    stub.MODEL_CONFIG_MAPPING = {MODEL_NAME: types.SimpleNamespace(underscore_to_dot=True)}  # type: ignore[attr-defined]
    return stub


def load_checker() -> tuple[Checker, Any]:
    """BFCL's ``ast_checker`` and its ``Language`` enum (bfcl-eval must be installed)."""
    sys.modules.setdefault("bfcl_eval.constants.model_config", _model_config_stub())
    from bfcl_eval.constants.enums import Language  # pyright: ignore[reportMissingImports]
    from bfcl_eval.eval_checker.ast_eval import (  # pyright: ignore[reportMissingImports]
        ast_checker as module,
    )

    if MODEL_NAME not in module.MODEL_CONFIG_MAPPING:
        raise RuntimeError("bfcl_eval's model config was imported before the stub")
    return module.ast_checker, Language


class Scorer:
    """Verdicts for decoded outputs: ``None`` is an output that could not be decoded."""

    def __init__(self, checker: tuple[Checker, Any] | None = None) -> None:
        self.checker, self.language = checker or load_checker()

    def verdict(self, case: Case, calls: list[dict[str, dict[str, Any]]] | None) -> Verdict:
        if case.category == "irrelevance":
            if calls:
                return Verdict(False, "irrelevance_error:decoder_success")
            return Verdict(True)
        if calls is None:
            return Verdict(False, "ast_decoder:decoder_failed")
        try:
            result = self.checker(
                copy.deepcopy(case.functions),
                copy.deepcopy(calls),
                copy.deepcopy(case.answer),
                self.language.PYTHON,
                case.category,
                MODEL_NAME,
            )
        except Exception as exc:  # BFCL's runner would stop here; one case is wrong instead
            return Verdict(False, f"checker_raised:{type(exc).__name__}", [str(exc)])
        if result["valid"]:
            return Verdict(True)
        return Verdict(False, result.get("error_type"), list(result.get("error", [])))
