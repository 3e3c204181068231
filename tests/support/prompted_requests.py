"""Tools, output types and requests shared by the prompted-tool and profile tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from agentloop import (
    AssistantMessage,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from agentloop._messages import ModelRequest, ResponseFormat, ToolDefinition
from agentloop._wire.profiles import OPTIMISTIC_PROFILE, ModelProfile
from agentloop._wire.request import build_body

ADD = ToolDefinition(
    "add",
    "Add two integers.",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
)


ECHO = ToolDefinition(
    "echo",
    "Repeat a word.",
    {
        "type": "object",
        "properties": {"word": {"type": "string"}},
        "required": ["word"],
        "additionalProperties": False,
    },
)


TOOLS = (ADD, ECHO)


OUTPUT = {
    "type": "object",
    "properties": {"total": {"type": "integer"}, "note": {"type": "string"}},
    "required": ["total", "note"],
    "additionalProperties": False,
}


PROMPTED = OPTIMISTIC_PROFILE.replace(tool_mode="prompted")


CALL = {"name": "add", "arguments": {"a": 2, "b": 3}}


WANTED = [("add", {"a": 2, "b": 3})]


def request(
    messages: tuple[Any, ...] = (UserMessage("Add 2 and 3."),),
    *,
    tools: tuple[ToolDefinition, ...] = TOOLS,
    settings: ModelSettings | None = None,
    output: Mapping[str, Any] | None = None,
) -> ModelRequest:
    fmt = ResponseFormat("Total", output) if output is not None else None
    return ModelRequest(messages, tools, settings, fmt)


def body_for(profile: ModelProfile, req: ModelRequest, *, stream: bool = False) -> dict[str, Any]:
    return build_body("m", profile, req, stream=stream)


HISTORY = (
    SystemMessage("Be brief."),
    UserMessage("Add 2 and 3."),
    AssistantMessage(None, (ToolCall("call_1", "add", '{"a":2,"b":3}'),)),
    ToolMessage("call_1", "5", "add"),
)


class Total(BaseModel):
    total: int
    note: str
