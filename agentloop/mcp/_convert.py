"""An MCP server's tools as agentloop `Tool`s, and its call results as tool results.

A server is untrusted input. Its tool names are made valid for the API (letters, digits, ``_``
and ``-``, at most 64 characters, after the prefix); its descriptions are capped; its input
schemas pass the same checks as any `Tool.from_schema` schema, plus the API's size and depth
limits and a cap on their JSON size. A tool that fails them is left out, with a warning naming
it, and the server's other tools are offered.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import SchemaError, UsageError
from .._log import get_logger
from .._schema_limits import check_limits
from .._tool_return import Image, ToolReturn
from .._tools import Tool, api_tool_name

if TYPE_CHECKING:
    import mcp_types

__all__ = ["MAX_SCHEMA_CHARS", "MCPToolError", "result_text", "result_value", "tools_of"]

_log = get_logger()
MAX_SCHEMA_CHARS = 100_000
"""An input schema longer than this, as JSON, is refused (the API's own limits come after)."""
Caller = Callable[[str, dict[str, Any]], Awaitable[str | ToolReturn]]
"""Calls a tool by its name on the server with the arguments; returns the result's value."""


class MCPToolError(Exception):
    """An MCP tool's result marked ``isError``: its text goes back to the model as the tool's
    error (or ends the run, with ``Agent(tool_errors="raise")``)."""


def tools_of(
    specs: Sequence[mcp_types.Tool],
    *,
    server: str,
    prefix: str,
    max_description_chars: int,
    call: Caller,
) -> list[Tool]:
    """The server's tools that can be offered, under names valid for the API."""
    tools: list[Tool] = []
    seen: set[str] = set()
    for spec in specs:
        name = api_name(prefix, spec.name)
        if name in seen:
            _skip(server, spec.name, f"its name {name!r} is taken by another of its tools")
            continue
        try:
            made = _tool(spec, name, max_description_chars, call)
        except (SchemaError, UsageError) as exc:
            _skip(server, spec.name, exc.message)
            continue
        seen.add(name)
        tools.append(made)
    return tools


def api_name(prefix: str, name: str) -> str:
    """`prefix` + `name`, with what the API does not take in a tool name replaced by ``_``."""
    return api_tool_name(f"{prefix}{name}")


def _tool(spec: mcp_types.Tool, name: str, cap: int, call: Caller) -> Tool:
    schema = dict(spec.input_schema)
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_CHARS:
        raise SchemaError(
            f"its input schema is {len(text):,} characters (at most {MAX_SCHEMA_CHARS:,})"
        )
    schema.setdefault("type", "object")
    check_limits(schema)
    description = spec.description or spec.title or ""
    if len(description) > cap:
        description = description[:cap] + " [...]"
    remote = spec.name

    async def function(**arguments: Any) -> str | ToolReturn:
        return await call(remote, arguments)

    return Tool.from_schema(name, description, schema, function)


def _skip(server: str, tool: str, reason: str) -> None:
    _log.warning("mcp_tool_skipped", server=server, tool=tool, reason=reason)


def result_value(result: mcp_types.CallToolResult) -> str | ToolReturn:
    """What the tool returns to the loop: its text (see `result_text`), with its images (shown
    to a model that takes them, after the turn's tool answers) when it sent any."""
    text = result_text(result)
    images = tuple(
        image
        for block in result.content
        if getattr(block, "type", None) == "image" and (image := _image(block)) is not None
    )
    return ToolReturn(text, images) if images else text


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text the model gets: the content blocks in order (text as it is, images left to
    `result_value`, other blocks named in one line); the structured content as JSON when the
    server sent no content blocks (a server that sends both puts the same JSON in a text block,
    as the protocol asks)."""
    if result.content or result.structured_content is None:
        texts = (_block_text(b) for b in result.content if getattr(b, "type", None) != "image")
        return "\n".join(texts)
    return json.dumps(result.structured_content, ensure_ascii=False)


def _image(block: Any) -> Image | None:
    try:
        data = base64.b64decode(block.data, validate=True)
    except (binascii.Error, ValueError):
        _log.warning("mcp_image_skipped", reason="its data is not base64")
        return None
    return Image(data, str(block.mime_type))


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind == "resource":
        inner = block.resource
        text = getattr(inner, "text", None)
        if isinstance(text, str):
            return text
        return f"[resource {inner.uri} ({inner.mime_type or 'binary'}): not shown]"
    if kind == "resource_link":
        return f"[resource link {block.uri}: {block.description or block.name}]"
    if kind == "audio":
        size = len(block.data) * 3 // 4
        return f"[{kind} ({block.mime_type}, about {size:,} bytes): not shown]"
    return f"[{kind or 'unknown'} content: not shown]"
