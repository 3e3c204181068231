"""examples/extract_documents.py, offline: every invoice extracted or its failure recorded."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "extract_documents.py"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AGENTLOOP_DEMO", "fake")
    spec = importlib.util.spec_from_file_location("extract_documents", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["extract_documents"] = module
    spec.loader.exec_module(module)
    return module


def test_extracts_every_invoice_and_records_the_scan(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "invoices.jsonl"
    summary = example.main(["--out", str(out)])
    results = [json.loads(line) for line in out.read_text().splitlines()]
    failures = [json.loads(line) for line in (tmp_path / "invoices.failures.jsonl").open()]
    documents = sorted(p.name for p in example.DOCUMENTS.glob("*.txt"))
    assert [*sorted(r["key"] for r in results), "scan_13.txt"] == documents
    assert [f["key"] for f in failures] == ["scan_13.txt"]
    assert failures[0]["error"] == "OutputValidationError" and failures[0]["attempts"] == 2
    for record in results:
        invoice = example.Invoice.model_validate(record["output"])
        text = (example.DOCUMENTS / record["key"]).read_text()
        assert invoice.vendor in text and f"{invoice.total:.2f} {invoice.currency}" in text
        computed = sum(i.quantity * i.unit_price for i in invoice.line_items)
        assert computed == pytest.approx(invoice.total)
    assert (summary.succeeded, summary.failed) == (11, 1)
    assert summary.cost > 0 and summary.usage.requests >= 12
    printed = capsys.readouterr()
    assert "OFFLINE" in printed.out and "1 x OutputValidationError" in printed.out
    assert "12/12 ok 11 failed 1" in printed.err  # the progress line


def test_a_second_run_skips_what_succeeded(example: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "invoices.jsonl"
    example.main(["--out", str(out)])
    again = example.main(["--out", str(out)])
    assert (again.skipped, again.succeeded, again.failed) == (11, 0, 1)
    keys = [json.loads(line)["key"] for line in out.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 11
