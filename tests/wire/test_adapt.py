"""Adapting replies: prompted calls read, answers unwrapped, escaped text unescaped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.prompted_requests import CALL, OUTPUT, PROMPTED, WANTED, request
from support.quirk_server import QuirkServer

from agentloop import Agent, AssistantMessage, OpenAICompatible, TextDelta, ToolMessage, tool
from agentloop._messages import ModelResponse
from agentloop._wire.adapt import adapt_response
from agentloop._wire.profiles import LLAMA_CPP_PROFILE, OPTIMISTIC_PROFILE


def test_adapt_response_reads_prompted_calls_and_marks_the_finish() -> None:
    req = request()
    response = ModelResponse(
        AssistantMessage(json.dumps({"tool_calls": [CALL]})), finish_reason="stop"
    )
    adapted = adapt_response(response, req, PROMPTED)
    assert adapted.finish_reason == "tool_calls"
    assert [c.name for c in adapted.message.tool_calls] == ["add"]
    assert adapt_response(response, req, OPTIMISTIC_PROFILE) is response  # native: untouched


def test_adapt_response_unwraps_the_answer_only_without_structured_output() -> None:
    response = ModelResponse(AssistantMessage('{"answer": "It is 5."}'), finish_reason="stop")
    assert adapt_response(response, request(), PROMPTED).message.content == "It is 5."
    with_output = adapt_response(response, request(output=OUTPUT), PROMPTED)
    assert with_output.message.content == '{"answer": "It is 5."}'
    assert adapt_response(response, request(tools=()), PROMPTED) is response  # no tools


def test_escaped_text_is_unescaped_where_the_profile_says() -> None:
    response = ModelResponse(AssistantMessage("He said &#34;hi&#34; &amp; left &lt;3"))
    req = request(tools=())
    assert adapt_response(response, req, LLAMA_CPP_PROFILE).message.content == (
        'He said "hi" & left <3'
    )
    assert adapt_response(response, req, OPTIMISTIC_PROFILE) is response


def test_escaped_prompted_calls_are_read() -> None:
    """llama-cpp-python's template makes the model write ``&#34;``: unescaped before reading."""
    text = json.dumps({"tool_calls": [CALL]}).replace('"', "&#34;")
    response = ModelResponse(AssistantMessage(text))
    profile = LLAMA_CPP_PROFILE.replace(tool_mode="prompted")
    adapted = adapt_response(response, request(), profile)
    assert [(c.name, json.loads(c.arguments)) for c in adapted.message.tool_calls] == WANTED


ESCAPED = "He said &#34;hi&#34; &amp; left"


UNESCAPED = 'He said "hi" & left'


@pytest.mark.anyio
async def test_escaped_text_run_gives_the_plain_text() -> None:
    with QuirkServer(answer=ESCAPED) as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=LLAMA_CPP_PROFILE)
        result = await Agent(model).run("Quote him.")
    assert result.output == UNESCAPED


@pytest.mark.anyio
async def test_escaped_text_streamed_whole_entities_are_unescaped() -> None:
    with QuirkServer(answer=ESCAPED, chunk_chars=len(ESCAPED)) as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=LLAMA_CPP_PROFILE)
        async with Agent(model).run_stream("Quote him.") as stream:
            texts = [e.text async for e in stream if isinstance(e, TextDelta)]
    assert "".join(texts) == UNESCAPED == stream.result.output


@pytest.mark.anyio
async def test_escaped_text_streamed_token_by_token_is_unescaped() -> None:
    with QuirkServer(answer=ESCAPED, chunk_chars=3) as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=LLAMA_CPP_PROFILE)
        async with Agent(model).run_stream("Quote him.") as stream:
            texts = [e.text async for e in stream if isinstance(e, TextDelta)]
    assert stream.result.output == UNESCAPED
    assert "".join(texts) == UNESCAPED


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["bare", "fenced", "tagged", "prose", "list"])
async def test_prompted_run_reads_each_call_form(form: Any) -> None:
    """Unconstrained replies (JSON mode without a schema): whatever form the model writes."""

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    profile = PROMPTED.replace(response_format="json_object")
    with QuirkServer(call_form=form) as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=profile)
        result = await Agent(model, tools=[add]).run("Add 2 and 2.")
    assert result.output == "The total is 4."
    assert any(isinstance(m, ToolMessage) and m.content == "4" for m in result.messages)
    assert len(server.bodies) == 2
