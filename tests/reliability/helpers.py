"""Helpers of the reliability suite: models with short deadlines, a recording retry sleep,
and the fault server of ``tools/faultserver.py`` (importable once this module is)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from faultserver import FaultServer

from agentloop import DEFAULT_PROFILE, AssistantMessage, OpenAICompatible, ToolCall, Usage
from agentloop._wire.retry import RetryPolicy

KEY = "sk-reliability-SENTINEL-7f3a9c"


class Sleeps:
    """A retry sleep that records the asked waits and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_model(
    server: FaultServer,
    sleeps: Sleeps | None = None,
    *,
    retries: int = 2,
    timeout: float = 5.0,
    **options,
) -> OpenAICompatible:
    policy = RetryPolicy(max_retries=retries, sleep=sleeps or Sleeps())
    options.setdefault("profile", DEFAULT_PROFILE)  # the scripts answer with the output tool
    return OpenAICompatible(
        "m", base_url=server.base_url, api_key=KEY, timeout=timeout, retry=policy, **options
    )


def usage_of(error: Exception) -> Usage:
    """The usage an error that ended a run carries (it must carry one)."""
    usage = getattr(error, "usage", None)
    assert isinstance(usage, Usage), f"{error!r} carries no usage"
    return usage


def calls_of(message: object) -> tuple[ToolCall, ...]:
    """The tool calls of a transcript message that must be the assistant's."""
    assert isinstance(message, AssistantMessage), message
    return message.tool_calls
