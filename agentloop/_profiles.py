"""Model profiles: what a chat-completions server accepts. The request builder obeys them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_PROFILE",
    "LLAMA_CPP_PROFILE",
    "OPENAI_PROFILE",
    "OPENROUTER_PROFILE",
    "ModelProfile",
    "OutputMode",
    "ResponseFormatSupport",
]

ResponseFormatSupport = Literal["json_schema", "json_object_schema", "json_object", "none"]
"""How a server takes structured output.

- ``json_schema``: ``{"type": "json_schema", "json_schema": {...}}`` (OpenAI, OpenRouter, vLLM).
- ``json_object_schema``: ``{"type": "json_object", "schema": {...}}`` (llama.cpp's server).
- ``json_object``: JSON mode without a schema; the schema goes into the prompt.
- ``none``: no response_format at all.
"""

OutputMode = Literal["native", "tool", "prompted"]
"""How an agent obtains structured output: the response_format, a final-result tool, or a prompt."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelProfile:
    """What a server accepts. Every flag can be overridden with `replace`.

    - `strict_tools`: tools may carry ``strict: true``.
    - `tool_choice_required`: ``tool_choice: "required"`` is accepted.
    - `response_format`: see `ResponseFormatSupport`.
    - `null_content_with_tool_calls`: an assistant turn with tool calls may have ``content:
      null`` (llama.cpp's server answers 500 to it; then ``""`` is sent).
    - `max_tokens_field`: ``max_completion_tokens`` or the older ``max_tokens``.
    - `parallel_tool_calls`: the ``parallel_tool_calls`` parameter is accepted.
    - `stream_usage`: ``stream_options: {"include_usage": true}`` is accepted.
    - `output_mode`: the default way an agent gets structured output from this server.
    """

    strict_tools: bool = False
    tool_choice_required: bool = False
    response_format: ResponseFormatSupport = "json_object"
    null_content_with_tool_calls: bool = True
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_tokens"
    parallel_tool_calls: bool = False
    stream_usage: bool = True
    output_mode: OutputMode = "tool"

    def replace(self, **changes: Any) -> ModelProfile:
        """A copy with the given flags changed."""
        return dataclasses.replace(self, **changes)


OPENAI_PROFILE = ModelProfile(
    strict_tools=True,
    tool_choice_required=True,
    response_format="json_schema",
    max_tokens_field="max_completion_tokens",
    parallel_tool_calls=True,
    output_mode="native",
)
"""OpenAI's API: strict tools, JSON-schema output, ``max_completion_tokens``."""

OPENROUTER_PROFILE = ModelProfile(
    strict_tools=True,
    tool_choice_required=True,
    response_format="json_schema",
    max_tokens_field="max_tokens",
    parallel_tool_calls=True,
    output_mode="native",
)
"""OpenRouter: as OpenAI's, but the output cap is sent as ``max_tokens``."""

LLAMA_CPP_PROFILE = ModelProfile(
    strict_tools=False,
    tool_choice_required=False,
    response_format="json_object_schema",
    null_content_with_tool_calls=False,
    max_tokens_field="max_tokens",
    parallel_tool_calls=False,
    stream_usage=False,
    output_mode="native",
)
"""llama-cpp-python's server: ``content: ""`` for tool-call turns, a schema via ``json_object``."""

DEFAULT_PROFILE = ModelProfile()
"""Conservative: no strict tools, no forced tool choice, JSON mode, ``max_tokens``."""
