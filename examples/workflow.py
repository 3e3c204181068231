"""A function-calling workflow: independent checks in parallel, then ordered steps, then a report.

    python examples/workflow.py

A release plan: the model runs three independent checks in one turn (they run at the same time:
the printed timeline shows them overlap), then tags and publishes, two tools marked
``sequential=True`` that run alone and in the order the model asked for, then answers with a
`ReleaseReport` (structured output, validated).

With OPENROUTER_API_KEY or OPENAI_API_KEY it runs on that provider (cost capped at $0.05);
without a key, on the tiny local model when it is installed (AGENTLOOP_DEMO=local requires it),
else offline: the model's answers are scripted and the tools are real (AGENTLOOP_DEMO=fake).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from _common import pick_model, settings_for
from pydantic import BaseModel

from agentloop import Agent, Limits, RunContext, RunResult, UsageLimitExceeded, tool
from agentloop.testing import reply, tool_call

PROMPT = "Release version 2.4.0: run the lint, unit and build checks, then tag and publish it."
CHECK_SECONDS = 0.3


@dataclass
class Timeline:
    started: float = field(default_factory=time.perf_counter)
    spans: list[tuple[str, float, float]] = field(default_factory=list)

    def record(self, name: str, begin: float) -> None:
        self.spans.append((name, begin - self.started, time.perf_counter() - self.started))


class Check(BaseModel):
    name: str
    passed: bool


class ReleaseReport(BaseModel):
    version: str
    checks: list[Check]
    tagged: bool
    published: bool


@tool
async def run_check(
    ctx: RunContext[Timeline], name: Literal["lint", "unit", "build"]
) -> dict[str, Any]:
    """Run one release check; independent checks can run at the same time.

    Args:
        name: which check.
    """
    begin = time.perf_counter()
    await anyio.sleep(CHECK_SECONDS)  # stands for real work
    ctx.deps.record(f"check {name}", begin)
    return {"check": name, "passed": True}


@tool(sequential=True)
async def tag_release(ctx: RunContext[Timeline], version: str) -> str:
    """Create the git tag of a version. Run after every check passed.

    Args:
        version: e.g. "2.4.0".
    """
    begin = time.perf_counter()
    await anyio.sleep(0.05)
    ctx.deps.record(f"tag {version}", begin)
    return f"tagged v{version}"


@tool(sequential=True)
async def publish(ctx: RunContext[Timeline], version: str) -> str:
    """Publish a tagged version. Run after tag_release.

    Args:
        version: e.g. "2.4.0".
    """
    begin = time.perf_counter()
    await anyio.sleep(0.05)
    ctx.deps.record(f"publish {version}", begin)
    return f"published {version}"


def offline_script() -> list[Any]:
    checks = [Check(name=n, passed=True).model_dump() for n in ("lint", "unit", "build")]
    return [
        tool_call(*(("run_check", {"name": n}) for n in ("lint", "unit", "build"))),
        tool_call(("tag_release", {"version": "2.4.0"}), ("publish", {"version": "2.4.0"})),
        reply({"version": "2.4.0", "checks": checks, "tagged": True, "published": True}),
    ]


def main() -> tuple[RunResult[ReleaseReport] | None, Timeline]:
    timeline = Timeline()
    with ExitStack() as stack:
        model, server, where = pick_model(stack, offline_script())
        print(f"== agentloop workflow ({where})\n\nuser: {PROMPT}\n")
        agent = Agent(
            model,
            instructions="You run release workflows. Run independent checks together, in one "
            "turn; tag only after all checks pass; publish only after tagging.",
            tools=[run_check, tag_release, publish],
            output_type=ReleaseReport,
            settings=settings_for(where),
            limits=Limits(max_requests=8, max_cost=0.05 if server is None else None),
        )
        timeline.started = time.perf_counter()
        try:
            result = agent.run_sync(PROMPT, deps=timeline)
        except UsageLimitExceeded as exc:
            print(f"the model did not finish within its limits ({exc.limit})")
            return None, timeline
        if server is not None:
            server.assert_done()
    print("timeline (seconds since start):")
    for name, begin, end in timeline.spans:
        bar = " " * int(begin * 40) + "#" * max(1, int((end - begin) * 40))
        print(f"  {name:<16} {begin:5.2f} -> {end:5.2f}  {bar}")
    print("\nreport:", result.output.model_dump_json(indent=2))
    cost = "unknown" if result.cost is None else f"${result.cost:.6f}"
    print(f"\nrequests={result.usage.requests} tool_calls={result.usage.tool_calls} cost={cost}")
    return result, timeline


if __name__ == "__main__":
    main()
