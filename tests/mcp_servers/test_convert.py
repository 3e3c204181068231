"""An MCP server's tool list is untrusted input: names, descriptions and schemas are checked."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

pytest.importorskip("mcp")

import mcp_types

from agentloop import Image, ToolReturn
from agentloop.mcp._convert import MAX_SCHEMA_CHARS, api_name, result_text, result_value, tools_of

OBJECT = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


async def _never(name: str, arguments: dict[str, Any]) -> str:
    raise AssertionError("not called")


def spec(name: str, schema: dict[str, Any] | None = None, description: str = "d") -> mcp_types.Tool:
    return mcp_types.Tool(name=name, description=description, input_schema=schema or OBJECT)


def convert(*specs: mcp_types.Tool, prefix: str = "", cap: int = 1024) -> list[Any]:
    return tools_of(specs, server="s", prefix=prefix, max_description_chars=cap, call=_never)


def test_names_are_made_valid_for_the_api() -> None:
    assert api_name("", "files/read.text") == "files_read_text"
    assert api_name("gh_", "x" * 100) == "gh_" + "x" * 61
    assert [t.name for t in convert(spec("a b"), spec("ok"), prefix="p_")] == ["p_a_b", "p_ok"]


def test_a_long_description_is_cut() -> None:
    [made] = convert(spec("t", description="y" * 5000), cap=100)
    assert made.description == "y" * 100 + " [...]"


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"n": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "object", "properties": {"p": {"description": "z" * MAX_SCHEMA_CHARS}}},
         "characters"),
        (nested(12), "levels deep"),
        ({"type": "array"}, "type 'object'"),
        ({"type": "object", "properties": {"p": {"type": 7}}}, "invalid JSON schema"),
    ],
)  # fmt: skip
def test_a_tool_whose_schema_fails_the_checks_is_left_out(schema: Any, reason: str) -> None:
    with capture_logs() as logs:
        made = convert(spec("bad", schema), spec("good"))
    assert [t.name for t in made] == ["good"]
    [warning] = [e for e in logs if e["event"] == "mcp_tool_skipped"]
    assert warning["tool"] == "bad" and reason in warning["reason"]


def test_two_names_that_become_one_keep_the_first() -> None:
    with capture_logs() as logs:
        made = convert(spec("a.b"), spec("a/b"))
    assert [t.name for t in made] == ["a_b"]
    assert any("taken" in e.get("reason", "") for e in logs)


def test_results_text_blocks_then_structured_content() -> None:
    text = mcp_types.TextContent(type="text", text="hello")
    image = mcp_types.ImageContent(type="image", data="AAAA", mime_type="image/png")
    both = mcp_types.CallToolResult(content=[text, image], structured_content={"a": 1})
    assert result_text(both) == "hello"  # the image is the value's, below
    assert result_value(both) == ToolReturn("hello", (Image(b"\x00\x00\x00", "image/png"),))
    broken = mcp_types.ImageContent(type="image", data="not base64!", mime_type="image/png")
    assert result_value(mcp_types.CallToolResult(content=[text, broken])) == "hello"
    structured = mcp_types.CallToolResult(content=[], structured_content={"a": "é"})
    assert result_text(structured) == '{"a": "é"}'
    assert result_text(mcp_types.CallToolResult(content=[])) == ""
