"""`probe`: the profile learned from a server before any run."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from support.quirk_runs import ANSWER, PROMPT, add, learned, model_for
from support.quirk_server import (
    DROP_TOOL_RESULTS,
    JSON_SCHEMA_500,
    MAX_TOKENS_400,
    NO_AUTO_TOOL_CHOICE,
    NO_STREAM_USAGE,
    NO_TOOL_PARSER,
    NULL_CONTENT_400,
    NULL_CONTENT_500,
    REQUIRED_500_EMPTY,
    STREAM_OPTIONS_400,
    QuirkServer,
)

from agentloop import Agent
from agentloop._wire.profiles import OPTIMISTIC_PROFILE

pytestmark = pytest.mark.anyio


async def test_probe_learns_llama_cpp_python() -> None:
    """llama-cpp-python's validation refuses null content and json_schema in one 500; its
    template drops tool results; it ignores stream_options."""
    quirks = {NULL_CONTENT_500, JSON_SCHEMA_500, DROP_TOOL_RESULTS, NO_STREAM_USAGE}
    with QuirkServer(quirks) as server, capture_logs() as logs:
        model = model_for(server)
        profile = await model.probe()
    assert (
        profile
        == model.profile
        == OPTIMISTIC_PROFILE.replace(
            response_format="json_object_schema",
            null_content_with_tool_calls=False,
            tool_results_as_text=True,
        )
    )
    assert learned(logs) == ["response_format", "null_content", "tool_results"]
    assert server.errors == [500, 500]
    # 2 refused, 1 answered, padded check + control, the resend as text, the stream
    assert len(server.bodies) == 8  # 7, and the same request with tool_choice left to "auto"
    assert model.learns


async def test_probe_learns_llama_cpp_python_with_function_calling() -> None:
    quirks = {NULL_CONTENT_500, JSON_SCHEMA_500, REQUIRED_500_EMPTY, DROP_TOOL_RESULTS}
    with QuirkServer(quirks | {NO_STREAM_USAGE}) as server:
        profile = await model_for(server).probe()
    assert profile == OPTIMISTIC_PROFILE.replace(
        response_format="json_object_schema",
        null_content_with_tool_calls=False,
        tool_choice_required=False,
        tool_results_as_text=True,
    )


async def test_probe_learns_an_openai_style_gateway() -> None:
    quirks = {NULL_CONTENT_400, MAX_TOKENS_400, STREAM_OPTIONS_400}
    with QuirkServer(quirks) as server, capture_logs() as logs:
        profile = await model_for(server).probe()
    assert profile == OPTIMISTIC_PROFILE.replace(
        null_content_with_tool_calls=False,
        max_tokens_field="max_completion_tokens",
        stream_usage=False,
    )
    assert sorted(learned(logs)) == ["max_tokens_field", "null_content", "stream_options"]
    # 2 refused + 1 answered, the padded results check, the stream refused + resent
    assert len(server.bodies) == 7 and server.errors == [400, 400, 400]


async def test_probe_learns_vllm_13_without_tool_support() -> None:
    with QuirkServer({NO_AUTO_TOOL_CHOICE, NO_TOOL_PARSER}) as server, capture_logs() as logs:
        profile = await model_for(server).probe()
    assert profile == OPTIMISTIC_PROFILE.replace(tool_mode="prompted")
    assert learned(logs) == ["tools"]
    assert len(server.bodies) == 4  # refused, resent prompted, "auto" prompted, the stream


async def test_a_probed_vllm_profile_works_for_a_run() -> None:
    with QuirkServer({NO_AUTO_TOOL_CHOICE}) as server:
        profile = await model_for(server).probe()
        result = await Agent(model_for(server, profile=profile), tools=[add]).run(PROMPT)
    assert result.output == ANSWER


async def test_probe_of_a_model_with_a_profile_keeps_it_when_nothing_is_learned() -> None:
    given = OPTIMISTIC_PROFILE.replace(strict_tools=False)
    with QuirkServer() as server, capture_logs() as logs:
        model = model_for(server, profile=given)
        assert await model.probe() is given
    assert not model.learns and learned(logs) == []


async def test_probe_of_a_model_with_a_profile_takes_what_it_learned() -> None:
    with QuirkServer({NULL_CONTENT_500}) as server:
        model = model_for(server, profile=OPTIMISTIC_PROFILE)
        profile = await model.probe()
    assert profile == OPTIMISTIC_PROFILE.replace(null_content_with_tool_calls=False)
    assert model.profile == profile and not model.learns
