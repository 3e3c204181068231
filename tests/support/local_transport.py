"""Helpers for the transport tests against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from agentloop._messages import ModelRequest, ToolDefinition, UserMessage
from agentloop._settings import ModelSettings
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import DEFAULT_PROFILE
from agentloop._wire.retry import RetryPolicy

KEY = "sk-local-SECRET-123"


OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


REQUEST = ModelRequest(
    (UserMessage("hi"),), tools=(ToolDefinition("clock", "", {"type": "object"}),)
)


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def model_for(server, *, retries=2, timeout=10.0, sleeps=None, **kwargs):
    policy = RetryPolicy(max_retries=retries, sleep=sleeps or Sleeps())
    kwargs.setdefault("profile", DEFAULT_PROFILE)  # the transport, not the profile learning
    return OpenAICompatible(
        "m", base_url=server.base_url, api_key=KEY, timeout=timeout, retry=policy, **kwargs
    )


def with_timeout(seconds: float) -> ModelRequest:
    return ModelRequest(REQUEST.messages, REQUEST.tools, ModelSettings(timeout=seconds))
