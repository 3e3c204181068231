"""The task-agent and workflow examples, offline: what they claim to show holds."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


Loader = Callable[[str], ModuleType]


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Loader:
    monkeypatch.setenv("AGENTLOOP_DEMO", "fake")
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def loader(name: str) -> ModuleType:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return loader


def test_task_agent_refunds_only_what_was_approved(
    load: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("task_agent")
    result, shop = example.main()
    assert shop.refunds == [("A17", 34.0)]  # the refused $420 refund never ran
    assert [approved for _, approved in shop.decisions] == [True, False]
    assert [json.loads(args)["order_id"] for args, _ in shop.decisions] == ["A17", "B42"]
    refused = [m for m in result.messages if getattr(m, "is_error", False)]
    assert len(refused) == 1 and "not approved" in refused[0].content
    assert shop.outbox and shop.outbox[0]["to"] == "ana@example.com"
    assert result.usage.requests == 4 and result.usage.tool_calls == 5
    out = capsys.readouterr().out
    assert "OFFLINE" in out and "-> NO" in out and "refunds made: [('A17', 34.0)]" in out


def test_workflow_runs_checks_together_and_release_steps_in_order(load: Loader) -> None:
    example = load("workflow")
    result, timeline = example.main()
    spans = {name: (begin, end) for name, begin, end in timeline.spans}
    checks = [spans[f"check {n}"] for n in ("lint", "unit", "build")]
    assert max(b for b, _ in checks) < min(e for _, e in checks)  # all three overlapped
    assert max(e for _, e in checks) - min(b for b, _ in checks) < 2 * example.CHECK_SECONDS
    tag, publish = spans["tag 2.4.0"], spans["publish 2.4.0"]
    assert max(e for _, e in checks) <= tag[0] and tag[1] <= publish[0]  # alone, in order
    assert [name for name, _, _ in timeline.spans][-2:] == ["tag 2.4.0", "publish 2.4.0"]
    report = result.output
    assert isinstance(report, example.ReleaseReport) and report.published and report.tagged
    assert [c.name for c in report.checks] == ["lint", "unit", "build"]
