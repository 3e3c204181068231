"""The examples, offline: what they claim to show holds."""

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


@pytest.mark.anyio
async def test_the_4k_example_runs_offline_within_the_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "context_window_4k.py"
    spec = importlib.util.spec_from_file_location("context_window_4k", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    await example.run_offline()
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = [row for row in rows if row and row[0].isdigit()]
    assert len(table) == 21  # 20 tool turns and the answer
    assert all(row[-1] == "yes" for row in table)
    assert max(int(row[4]) for row in table) <= 4095 - 1023
    assert int(table[-1][3]) > 0  # older turns were dropped from what was sent
    assert rows[-1][1] == f"'{example._errors_in_log()}'"


@pytest.mark.anyio
async def test_quickstart_prints_its_usage_and_nothing_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTLOOP_DEMO", "fake")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples"))
    sys.modules.pop("quickstart", None)
    result = await importlib.import_module("quickstart").main()
    printed = capsys.readouterr()
    usage = result.usage
    tokens = f"{usage.input_tokens}/{usage.output_tokens} tokens in/out"
    assert f"requests=2 tool_calls=2, {tokens}, cost=" in printed.out
    assert printed.err == ""


def test_mcp_agent_uses_the_notes_server(load: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mcp")
    result = load("mcp_agent").main()
    answers = {m.name: m.content for m in result.messages if m.role == "tool"}
    assert answers["notes_search"] == "trio\nanyio"  # the server's own search
    assert answers["notes_read"].startswith("trio runs async code")
    assert "OFFLINE" in capsys.readouterr().out


def test_support_desk_refunds_once_after_approval_across_three_agents(
    load: Loader, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentloop import Agent

    example = load("support_desk")
    refunds_at_resume: list[list[tuple[str, float]]] = []
    resume_sync = Agent.resume_sync

    def watched(self: Agent[str], state: str, approvals: dict[str, bool]) -> object:
        refunds_at_resume.append(list(example.REFUNDS))
        return resume_sync(self, state, approvals)

    monkeypatch.setattr(Agent, "resume_sync", watched)
    result, refunds = example.main()
    assert refunds_at_resume == [[]]  # one pause, and nothing was refunded before the approval
    assert refunds == [("A17", 34.0)]  # then the refund ran exactly once
    assert result.agent == "billing" and not result.pending_approvals
    by_agent = {name: usage.requests for name, usage in result.usage_by_agent.items()}
    assert by_agent == {"triage": 2, "orders": 2, "billing": 2}  # billing's 2: the paused and after
    assert result.usage.requests == 6
    out = capsys.readouterr().out
    assert "OFFLINE" in out and "waits for approval: refund(" in out
