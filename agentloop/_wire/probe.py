"""The requests `OpenAICompatible.probe` sends: small, and using every feature a profile names."""

from __future__ import annotations

from .._messages import (
    AssistantMessage,
    ModelRequest,
    ResponseFormat,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from .._settings import ModelSettings

__all__ = ["probe_requests"]

_WORD = {
    "type": "object",
    "properties": {"word": {"type": "string"}},
    "required": ["word"],
    "additionalProperties": False,
}
_ECHO = ToolDefinition("echo", "Repeat a word.", _WORD, strict=True)
_ANSWER = ResponseFormat("answer", _WORD, strict=True)


def probe_requests() -> tuple[ModelRequest, ModelRequest, ModelRequest]:
    """(a non-stream request with every feature, the same with ``tool_choice`` left to its
    default, a streamed one with an output cap). A server can take "required" and refuse the
    default "auto" (vLLM without ``--enable-auto-tool-choice``)."""
    conversation = (
        SystemMessage("Answer in one word."),
        UserMessage("Echo the word 'hi'."),
        AssistantMessage(None, (ToolCall("call_probe", "echo", '{"word":"hi"}'),)),
        ToolMessage("call_probe", "hi", "echo"),
        UserMessage("Echo it once more."),
    )
    settings = ModelSettings(
        max_completion_tokens=16, tool_choice="required", parallel_tool_calls=False, temperature=0
    )
    plain = ModelRequest(conversation, (_ECHO,), settings, _ANSWER)
    auto = ModelRequest(conversation, (_ECHO,), ModelSettings(max_completion_tokens=16))
    streamed = ModelRequest(
        (UserMessage("Say hi."),), (), ModelSettings(max_completion_tokens=4, temperature=0)
    )
    return plain, auto, streamed
