"""The built-in profiles of local servers: what each takes, the body each builds."""

from __future__ import annotations

import pytest
from support.prompted_requests import HISTORY, OUTPUT, Total, body_for, request
from support.quirk_server import QuirkServer

from agentloop import Agent, ModelSettings, OpenAICompatible, tool
from agentloop._wire.profiles import (
    LLAMA_CPP_PROFILE,
    LLAMA_SERVER_PROFILE,
    LM_STUDIO_PROFILE,
    OLLAMA_PROFILE,
    VLLM_PROFILE,
    ModelProfile,
)
from agentloop._wire.prompted import schema_prompt


def test_built_in_profiles_say_what_each_server_takes() -> None:
    assert VLLM_PROFILE.response_format == "json_schema" and VLLM_PROFILE.tool_choice_required
    assert not VLLM_PROFILE.strict_tools and VLLM_PROFILE.parallel_tool_calls
    assert OLLAMA_PROFILE.response_format == "json_schema"
    assert OLLAMA_PROFILE.max_tokens_field == "max_tokens"
    assert not OLLAMA_PROFILE.tool_choice_required and not OLLAMA_PROFILE.strict_tools
    assert LM_STUDIO_PROFILE.response_format == "json_schema"
    assert not LM_STUDIO_PROFILE.null_content_with_tool_calls
    assert not LM_STUDIO_PROFILE.tool_choice_required
    assert LLAMA_SERVER_PROFILE.tool_choice_required
    assert not LLAMA_SERVER_PROFILE.null_content_with_tool_calls
    assert LLAMA_CPP_PROFILE.response_format == "json_object_schema"
    assert LLAMA_CPP_PROFILE.escaped_text and LLAMA_CPP_PROFILE.tool_results_as_text
    assert not LLAMA_CPP_PROFILE.stream_usage and not LLAMA_CPP_PROFILE.tool_choice_required
    for profile in (VLLM_PROFILE, OLLAMA_PROFILE, LM_STUDIO_PROFILE, LLAMA_SERVER_PROFILE):
        assert profile.tool_mode == "native" and profile.output_mode == "native"
        assert not profile.escaped_text and not profile.tool_results_as_text


@pytest.mark.parametrize(
    "profile",
    [VLLM_PROFILE, OLLAMA_PROFILE, LM_STUDIO_PROFILE, LLAMA_SERVER_PROFILE, LLAMA_CPP_PROFILE],
    ids=["vllm", "ollama", "lm_studio", "llama_server", "llama_cpp"],
)
def test_each_profile_builds_the_body_its_server_takes(profile: ModelProfile) -> None:
    settings = ModelSettings(max_completion_tokens=32, tool_choice="required")
    req = request(HISTORY, settings=settings, output=OUTPUT)
    body = body_for(profile, req, stream=True)
    assistant = body["messages"][2]
    assert assistant["content"] == (None if profile.null_content_with_tool_calls else "")
    assert body["max_tokens"] == 32 and "max_completion_tokens" not in body
    assert body["tool_choice"] == ("required" if profile.tool_choice_required else "auto")
    assert ("parallel_tool_calls" in body) is False  # not set: not sent
    assert ("stream_options" in body) is profile.stream_usage
    assert all("strict" not in t["function"] for t in body["tools"])
    fmt = body["response_format"]
    if profile.response_format == "json_schema":
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == OUTPUT
    else:
        assert fmt == {"type": "json_object", "schema": OUTPUT}
        assert schema_prompt(OUTPUT) in body["messages"][0]["content"]
    roles = [m["role"] for m in body["messages"]]
    assert roles[-1] == ("user" if profile.tool_results_as_text else "tool")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "profile",
    [VLLM_PROFILE, OLLAMA_PROFILE, LM_STUDIO_PROFILE, LLAMA_SERVER_PROFILE, LLAMA_CPP_PROFILE],
    ids=["vllm", "ollama", "lm_studio", "llama_server", "llama_cpp"],
)
async def test_each_profile_runs_a_tool_and_structured_output(profile: ModelProfile) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    with QuirkServer() as server:
        model = OpenAICompatible("m", base_url=server.base_url, profile=profile)
        assert not model.learns
        result = await Agent(model, tools=[add], output_type=Total).run("Add 2 and 2.")
    assert result.output == Total(total=2, note="x")
    assert len(server.bodies) == 2  # no learning, no checks
    second = server.bodies[1]
    assert second["tool_choice"] == "auto"
    (turn,) = [m for m in second["messages"] if m["role"] == "assistant"]
    assert turn["content"] == (None if profile.null_content_with_tool_calls else "")
