"""BFCL's questions and possible answers, and the fixed, seeded sample a run asks.

The data are the JSON-lines files that the ``bfcl-eval`` package ships (``bfcl_eval/data/``):
``BFCL_v4_<category>.json`` holds each case's id, question (a list of turns, each a list of
message dicts) and functions; ``possible_answer/BFCL_v4_<category>.json`` holds the ground truth
that BFCL's checker takes (irrelevance has none: the right answer there is no call). The files
are read directly, so nothing of bfcl_eval is imported here.

The sample is drawn per category with its own generator (seeded from the seed and the category's
name), so adding a category or changing another one's size never changes which cases a category
gets; the cases keep the dataset's order.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
VERSION_PREFIX = "BFCL_v4"
DEFAULT_SEED = 20260323


@dataclass(frozen=True)
class Case:
    """One BFCL question: `functions` are BFCL's own (as its checker reads them), `answer` the
    possible answer (``None`` for irrelevance)."""

    id: str
    category: str
    question: list[list[dict[str, Any]]]
    functions: list[dict[str, Any]]
    answer: list[dict[str, Any]] | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The first (in these categories: the only) turn's messages."""
        return self.question[0]


def data_dir() -> Path:
    """``bfcl_eval/data`` of the installed bfcl-eval (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "bfcl-eval is not installed: pip install --no-deps -r tools/bfcl/requirements.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_lines(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load(category: str, directory: Path | None = None) -> list[Case]:
    """Every case of `category`, in the dataset's order, with its possible answer."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    directory = directory or data_dir()
    entries = _read_lines(directory / f"{VERSION_PREFIX}_{category}.json")
    answers: dict[str, Any] = {}
    if category != "irrelevance":
        answer_file = directory / "possible_answer" / f"{VERSION_PREFIX}_{category}.json"
        answers = {entry["id"]: entry["ground_truth"] for entry in _read_lines(answer_file)}
    cases = []
    for entry in entries:
        if category != "irrelevance" and entry["id"] not in answers:
            raise ValueError(f"no possible answer for {entry['id']}")
        cases.append(
            Case(
                id=entry["id"],
                category=category,
                question=entry["question"],
                functions=entry["function"],
                answer=answers.get(entry["id"]),
            )
        )
    return cases


def sample(cases: Sequence[Case], size: int | None, seed: int, category: str) -> list[Case]:
    """`size` cases drawn without replacement (all of them when `size` is None or larger),
    in the dataset's order."""
    if size is None or size >= len(cases):
        return list(cases)
    chosen = random.Random(f"{seed}:{category}").sample(range(len(cases)), size)
    return [cases[index] for index in sorted(chosen)]
