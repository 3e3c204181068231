"""Model profiles: what a chat-completions server accepts. The request builder obeys them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ANTHROPIC_PROFILE",
    "BUILT_IN_PROFILES",
    "DEEPSEEK_PROFILE",
    "DEFAULT_PROFILE",
    "GEMINI_PROFILE",
    "GROQ_PROFILE",
    "LLAMA_CPP_PROFILE",
    "LLAMA_SERVER_PROFILE",
    "LM_STUDIO_PROFILE",
    "MISTRAL_PROFILE",
    "OLLAMA_PROFILE",
    "OPENAI_PROFILE",
    "OPENROUTER_PROFILE",
    "OPTIMISTIC_PROFILE",
    "VLLM_PROFILE",
    "ModelProfile",
    "OutputMode",
    "ResponseFormatSupport",
    "ToolMode",
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

ToolMode = Literal["native", "prompted"]
"""How tools reach the model: the ``tools`` parameter, or described in the prompt (for a server
with no tool support; calls are then read back from the JSON of the reply)."""


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
    - `tool_mode`: ``native`` (the ``tools`` parameter) or ``prompted`` (see `ToolMode`).
    - `tool_choice`: ``tool_choice`` may be sent at all; when it may and the request has tools,
      ``"auto"`` is sent unless the settings choose (some servers offer the tools only then).
    - `escaped_text`: the server HTML-escapes the text it returns (``&#34;`` for ``"``); the
      answer is unescaped.
    - `stream_tools`: the server streams answers to requests with tools. When it does not
      (llama-cpp-python's function-calling handler streams an empty answer), such a request is
      sent whole and its answer given as deltas.
    - `tools_need_system`: the server describes the tools inside the system message, and only
      when there is one (llama-cpp-python's function-calling template): a request with tools
      and no system message gets one.
    - `tool_results_as_text`: tool results go as user turns (``Result of NAME (call ID):``),
      for a server whose chat template drops ``role: "tool"`` messages, so that the model
      sees what its calls returned.
    - `tool_prompt_tokens` / `tokens_per_tool`: what the server's chat template adds to a
      request with tools beyond the tools' JSON: once, and per tool (a template that wraps the
      tools in instructions, or escapes their JSON, costs more than the JSON itself). The
      context-window estimate counts it.
    """

    strict_tools: bool = False
    tool_choice_required: bool = False
    response_format: ResponseFormatSupport = "json_object"
    null_content_with_tool_calls: bool = True
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_tokens"
    parallel_tool_calls: bool = False
    stream_usage: bool = True
    output_mode: OutputMode = "tool"
    tool_mode: ToolMode = "native"
    tool_choice: bool = True
    escaped_text: bool = False
    stream_tools: bool = True
    tools_need_system: bool = False
    tool_results_as_text: bool = False
    tool_prompt_tokens: int = 0
    tokens_per_tool: int = 0

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

VLLM_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_schema",
    parallel_tool_calls=True,
    output_mode="native",
)
"""vLLM's server (0.8.3 and later): JSON-schema output and forced tool calls through guided
decoding; ``strict`` is ignored there, so tools are not made strict. Tools need the server started
with ``--enable-auto-tool-choice --tool-call-parser NAME``; without them it refuses every request
with tools, and a learning model falls back to prompted tools."""

OLLAMA_PROFILE = ModelProfile(response_format="json_schema", output_mode="native")
"""Ollama's ``/v1`` endpoint: JSON-schema output; ``tool_choice``, ``strict`` and
``parallel_tool_calls`` are silently ignored, and ``max_completion_tokens`` too (so the cap is
sent as ``max_tokens``)."""

LM_STUDIO_PROFILE = ModelProfile(
    response_format="json_schema",
    null_content_with_tool_calls=False,
    output_mode="native",
)
"""LM Studio: JSON-schema output only (it refuses ``json_object``), ``content: ""`` on tool-call
turns (it refuses null), ``tool_choice: "required"`` not relied on (llama.cpp models only)."""

LLAMA_SERVER_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_schema",
    null_content_with_tool_calls=False,
    parallel_tool_calls=True,
    output_mode="native",
)
"""llama.cpp's own server (``llama-server --jinja``): tools through the model's chat template,
forced calls and JSON-schema output through grammars; ``content: ""`` on tool-call turns (older
builds refuse null). Without ``--jinja`` it refuses tools: a learning model then prompts them."""

LLAMA_CPP_PROFILE = ModelProfile(
    strict_tools=False,
    tool_choice_required=False,
    response_format="json_object_schema",
    null_content_with_tool_calls=False,
    max_tokens_field="max_tokens",
    parallel_tool_calls=False,
    stream_usage=False,
    output_mode="native",
    escaped_text=True,
    stream_tools=False,
    tools_need_system=True,
    tool_results_as_text=True,
    tool_prompt_tokens=130,
    tokens_per_tool=40,
)
"""llama-cpp-python's server (``--chat_format chatml-function-calling``): ``content: ""`` for
tool-call turns, a schema via ``json_object``; its template HTML-escapes what it renders (so the
model writes ``&#34;``) and drops tool results, which are therefore sent as user turns; it
streams nothing when tools are offered, so those requests are sent whole; and it describes the
tools only inside a system message, so a request with tools always has one. Its tool prompt
(measured with SmolLM2: 230 tokens more for one tool, 399 for three) is counted."""

ANTHROPIC_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="none",
    parallel_tool_calls=True,
    output_mode="tool",
)
"""Anthropic's OpenAI-compatible endpoint: it ignores ``strict`` and ``response_format``
without an error, so neither is sent; structured output goes through the final-result tool
(forced with ``tool_choice: "required"``), and the answer is validated, and asked again, here."""

GEMINI_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_schema",
    output_mode="native",
)
"""Google's OpenAI-compatible Gemini endpoint: ``tool_choice`` (``"required"`` included), a
``json_schema`` response format and ``stream_options``; ``parallel_tool_calls`` is not among its
documented fields, and tools are not made strict."""

GROQ_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_object",
    max_tokens_field="max_completion_tokens",
    parallel_tool_calls=True,
    output_mode="tool",
)
"""Groq: forced and parallel tool calls, ``max_completion_tokens``; JSON mode on every model
(a ``json_schema`` format only on some), so structured output goes through the final-result tool.
It answers 400 ``tool_use_failed`` when a forced call is not made: with this profile that is the
model's failure, not a feature to drop."""

MISTRAL_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_schema",
    parallel_tool_calls=True,
    stream_usage=False,
    output_mode="native",
)
"""Mistral's API: ``tool_choice: "required"`` (or its own ``"any"``), ``parallel_tool_calls``,
a ``json_schema`` response format, ``max_tokens``; a stream reports its usage in its last chunk
unasked, so ``stream_options`` is not sent."""

DEEPSEEK_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_object",
    output_mode="tool",
)
"""DeepSeek's API: ``tool_choice`` (``"required"`` included), JSON mode without a schema
(``strict`` tools only on its beta URL, so not sent); structured output through the final-result
tool."""

OPTIMISTIC_PROFILE = ModelProfile(
    tool_choice_required=True,
    response_format="json_schema",
    max_tokens_field="max_tokens",
    parallel_tool_calls=True,
    output_mode="native",
)
"""Where a model without a profile starts: everything OpenAI's API takes but ``strict`` (an
OpenAI feature that compatible servers ignore, and whose schema subset would drop constraints,
such as ``maxLength``, that their grammars enforce), the output cap as ``max_tokens`` (which
every compatible server reads). `OpenAICompatible` learns from the server's
error answers which of these it does not take (see `ModelProfile` and `OpenAICompatible.probe`).
"""

DEFAULT_PROFILE = ModelProfile()
"""Conservative: no strict tools, no forced tool choice, JSON mode, ``max_tokens``."""

BUILT_IN_PROFILES: dict[str, ModelProfile] = {
    "OPENAI_PROFILE": OPENAI_PROFILE,
    "OPENROUTER_PROFILE": OPENROUTER_PROFILE,
    "ANTHROPIC_PROFILE": ANTHROPIC_PROFILE,
    "GEMINI_PROFILE": GEMINI_PROFILE,
    "GROQ_PROFILE": GROQ_PROFILE,
    "MISTRAL_PROFILE": MISTRAL_PROFILE,
    "DEEPSEEK_PROFILE": DEEPSEEK_PROFILE,
    "VLLM_PROFILE": VLLM_PROFILE,
    "OLLAMA_PROFILE": OLLAMA_PROFILE,
    "LM_STUDIO_PROFILE": LM_STUDIO_PROFILE,
    "LLAMA_SERVER_PROFILE": LLAMA_SERVER_PROFILE,
    "LLAMA_CPP_PROFILE": LLAMA_CPP_PROFILE,
    "OPTIMISTIC_PROFILE": OPTIMISTIC_PROFILE,
    "DEFAULT_PROFILE": DEFAULT_PROFILE,
}
"""The built-in profiles by name (a repr names a model's profile when it is one of these)."""
