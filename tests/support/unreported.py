"""A fake server that reports no usage."""

from __future__ import annotations

from agentloop.testing import Reply as Scripted
from agentloop.testing import reply

UNKNOWN = "tokens unknown (the server reported none)"


def silent(content: str) -> Scripted:
    """A text answer whose usage the server does not report."""
    return reply(content, report_usage=False)
