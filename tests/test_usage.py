"""Usage totals, and requests whose usage the server did not report.

Offline, through the real response parsing: `FakeServer` with ``report_usage=False`` sends a body
without ``usage`` and a stream without a usage chunk; the CLI runs against a real HTTP server on
127.0.0.1 that streams no usage either.
"""

from __future__ import annotations

import pytest
from support.unreported import UNKNOWN, silent

from agentloop import Agent, RequestUsage, Usage, tool
from agentloop.testing import FakeServer, tool_call
from agentloop.testing import Reply as Scripted


@pytest.mark.anyio
async def test_some_requests_reported_reads_at_least() -> None:
    calls = tool_call(("lookup", {"q": "x"})).tool_calls
    first = Scripted(tool_calls=calls, usage={"prompt_tokens": 120, "completion_tokens": 30})

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return q * 3

    with FakeServer([first, silent("found it")]) as server:
        result = await Agent(server.model(), tools=[lookup]).run("go")
    usage = result.usage
    assert (usage.requests, usage.unreported_requests) == (2, 1)
    assert (usage.input_tokens, usage.output_tokens) == (120, 30)
    assert usage.describe_tokens() == "at least 120/30 tokens in/out (1 of 2 requests unreported)"
    assert [r.usage_reported for r in result.requests] == [True, False]


def test_usage_totals_and_their_description() -> None:
    assert Usage().describe_tokens() == "0/0 tokens in/out" and Usage().fully_reported
    usage = Usage()
    usage.add_request(RequestUsage(10, 2))
    usage.add_request(RequestUsage(reported=False))
    total = Usage()
    total.add(usage)
    total.add(usage)
    assert (total.requests, total.unreported_requests, total.input_tokens) == (4, 2, 20)
    assert total.describe_tokens() == "at least 20/4 tokens in/out (2 of 4 requests unreported)"
    silent_only = Usage()
    silent_only.add_request(RequestUsage(reported=False))
    assert silent_only.describe_tokens() == UNKNOWN
