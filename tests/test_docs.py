"""Every Python sample in docs/ runs as written, offline (those starting LocalServer excepted)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
SAMPLES = [
    pytest.param(code, id=f"{page.name}#{index}")
    for page in sorted(DOCS.glob("*.md"))
    for index, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
    if "LocalServer(" not in code
]


def test_the_docs_have_samples() -> None:
    assert len(SAMPLES) >= 8


@pytest.mark.parametrize("code", SAMPLES)
def test_sample_runs(code: str) -> None:
    module = types.ModuleType("docs_sample")  # a real module: dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, "<docs sample>", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.name)
def test_every_code_fence_is_closed(page: Path) -> None:
    """An unclosed fence would swallow the rest of the page, and hide its sample from this test."""
    fences = [line for line in page.read_text().splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"{page.name} has an unclosed code fence"
