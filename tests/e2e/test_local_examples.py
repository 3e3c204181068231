"""The demo and the CLI on the real local model: what `make demo` shows a user with no key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["AGENTLOOP_DEMO"] = "local"
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout,
        env=env, cwd=ROOT, check=False,
    )  # fmt: skip


def test_the_demo_makes_real_tool_calls_on_the_local_model() -> None:
    done = run("examples/quickstart.py")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "LOCAL: SmolLM2-135M-Instruct" in out and "not wisdom" in out
    calls = out.split("the tool calls the model made", 1)[1].split("\n\n", 1)[0]
    made = re.findall(r"^  (get_weather|convert_currency)\((\{.*\})\) -> (.+)$", calls, re.M)
    assert made, f"no tool call of ours in:\n{calls}"
    for _, arguments, result in made:
        json.loads(arguments)  # the arguments the model wrote are JSON
        assert "Invalid" not in result
    if "the tiny model did not finish" in out:  # within its limits: said, and not a traceback
        assert "Traceback" not in done.stderr and "(local run: a 135M model" in out
        return
    result = json.loads(out.split("\nresult:", 1)[1].split("\n\n", 1)[0])
    assert set(result) == {"city", "celsius", "sky", "budget_eur", "packing"}


def test_the_cli_extracts_schema_valid_records_on_the_local_model(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("invoice_01.txt", "invoice_02.txt"):
        (folder / name).write_text((ROOT / "examples/data/invoices" / name).read_text())
    out = tmp_path / "out.jsonl"
    done = run(
        "-m", "agentloop._cli", "extract", "--model", "local",
        "--schema", "examples/extract_documents.py:Invoice",
        "--input", str(folder), "--output", str(out), "--concurrency", "1",
    )  # fmt: skip
    failures = tmp_path / "out.failures.jsonl"
    assert done.returncode in (0, 1), done.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    failed = failures.read_text().splitlines() if failures.exists() else []
    assert len(records) + len(failed) == 2  # nothing lost
    assert records, f"the local model extracted nothing: {failed}"
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from extract_documents import Invoice  # pyright: ignore[reportMissingImports]
    finally:
        sys.path.remove(str(ROOT / "examples"))
    for record in records:
        Invoice.model_validate(record["output"])
    assert "2/2" in done.stderr and "succeeded" in done.stdout


@pytest.fixture(autouse=True)
def _needs_local_model() -> None:
    from agentloop.local import local_available

    if not local_available():
        pytest.fail("the local model is not installed: run `make e2e`, which installs it")
