"""A real model end to end: tool calls, structured output, streaming, history, the repetition guard.

The model is tiny (SmolLM2-135M-Instruct): these tests assert what holds for any real model (valid
arguments, schema-valid output, bounded runs), never its wording. Sampling is greedy and seeded.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from agentloop import (
    Agent,
    AssistantMessage,
    ContextLengthError,
    Limits,
    ModelSettings,
    PartialOutput,
    RunFinished,
    TextDelta,
    ToolExecutionError,
    ToolMessage,
    UsageLimitExceeded,
    tool,
)
from agentloop.local import LocalServer

GREEDY = ModelSettings(temperature=0.0, seed=7, max_completion_tokens=64)
# Room for a prompted reply's JSON calls (llama-server with a template that takes no tools).
TOOLS = GREEDY | ModelSettings(tool_choice="auto", max_completion_tokens=200)
INSTRUCTIONS = "You plan trips. Use the tools."


class Person(BaseModel):
    name: str = Field(max_length=30)
    age: int


def weather_tool(calls: list[str]) -> Any:
    @tool
    def get_weather(city: Annotated[str, Field(max_length=30)]) -> dict[str, Any]:
        """Current weather in a city.

        Args:
            city: the city name.
        """
        calls.append(city)
        return {"city": city, "celsius": 22.0}

    return get_weather


def tool_calls(messages: list[Any]) -> list[Any]:
    return [c for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls]


def test_server_quirks_match_the_llama_cpp_profile(local_server: LocalServer) -> None:
    """What LLAMA_CPP_PROFILE encodes, checked against the real server."""
    if local_server.backend != "llama-cpp-python":
        pytest.skip("llama-cpp-python's quirks")
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    user = {"role": "user", "content": "Extract: Ana is 31 years old."}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with httpx.Client(base_url=local_server.base_url, timeout=120, trust_env=False) as client:

        def post(**body: Any) -> httpx.Response:
            return client.post(
                "/chat/completions",
                json={"model": "m", "max_tokens": 60, "temperature": 0, "seed": 7, **body},
            )

        null_turn = {"role": "assistant", "content": None, "tool_calls": [call]}
        answer = {"role": "tool", "tool_call_id": "c1", "content": "{}"}
        assert post(messages=[user, null_turn, answer]).status_code == 500
        empty_turn = {**null_turn, "content": ""}
        assert post(messages=[user, empty_turn, answer]).status_code == 200
        assert post(messages=[user], tools=tools, tool_choice="required").status_code == 500
        named = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
        assert post(messages=[user], response_format=named).status_code == 500
        with_schema = post(
            messages=[user], response_format={"type": "json_object", "schema": schema}
        )
        assert with_schema.status_code == 200
        content = with_schema.json()["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content, strict=False), schema)  # raw newlines may occur


def test_llama_server_reads_the_templates_tool_support(local_server: LocalServer) -> None:
    """SmolLM2's own chat template takes no tools: llama-server would drop them silently, so
    the model prompts them."""
    if local_server.backend != "llama-server":
        pytest.skip("llama-server's /props")
    assert local_server.supports_tools is False
    assert local_server.model().profile.tool_mode == "prompted"


@pytest.mark.anyio
async def test_tool_calls_carry_arguments_valid_against_the_schema(
    local_server: LocalServer,
) -> None:
    calls: list[str] = []
    get_weather = weather_tool(calls)
    agent = Agent(
        local_server.model(),
        instructions=INSTRUCTIONS,
        tools=[get_weather],
        settings=TOOLS,
        limits=Limits(max_requests=3, max_repeated_calls=1),
    )
    _, messages = await _bounded_run(agent, "What is the weather in Lisbon?")
    made = tool_calls(messages)
    assert made, "the model made no tool call"
    # The rest got their error back, or the earlier result of the same call (not run again).
    refused = {
        m.tool_call_id
        for m in messages
        if isinstance(m, ToolMessage) and (m.is_error or "not run again" in m.content)
    }
    ran = [call for call in made if call.id not in refused]
    for call in ran:
        assert call.name == "get_weather"
        jsonschema.validate(json.loads(call.arguments), get_weather.parameters)
    assert ran and len(calls) == len(ran)
    assert calls[0] == json.loads(ran[0].arguments)["city"]


@pytest.mark.anyio
async def test_structured_extraction_is_valid_against_its_schema(
    local_server: LocalServer,
) -> None:
    agent = Agent(local_server.model(), output_type=Person, settings=GREEDY)
    result = await agent.run("Extract the person: Ana is 31 years old.")
    assert isinstance(result.output, Person)
    assert result.usage.requests == 1  # the grammar makes the first answer valid
    final = result.messages[-1]
    assert isinstance(final, AssistantMessage) and final.content is not None
    jsonschema.validate(json.loads(final.content), Person.model_json_schema())
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


@pytest.mark.anyio
async def test_streaming_deltas_add_up_to_the_parsed_output(local_server: LocalServer) -> None:
    agent = Agent(local_server.model(), output_type=Person, settings=GREEDY)
    texts: list[str] = []
    partials: list[Any] = []
    finished: list[RunFinished] = []
    async with agent.run_stream("Extract the person: Bob is 40 years old.") as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                texts.append(event.text)
            elif isinstance(event, PartialOutput):
                partials.append(event.value)
            elif isinstance(event, RunFinished):
                finished.append(event)
    result = stream.result
    assert len(texts) > 1, "the answer did not arrive in pieces"
    assert Person.model_validate_json("".join(texts)) == result.output
    assert partials and partials[-1].model_dump() == result.output.model_dump()
    assert len(finished) == 1 and finished[0].result is result


@pytest.mark.anyio
async def test_a_multi_turn_conversation_sends_the_history_back(
    local_server: LocalServer,
) -> None:
    agent = Agent(local_server.model(), instructions="Answer briefly.", settings=GREEDY)
    first = await agent.run("My name is Ana and I live in Porto.")
    second = await agent.run("Where do I live?", history=first.messages)
    assert second.messages[: len(first.messages)] == first.messages
    assert len(second.messages) == len(first.messages) + 2
    assert isinstance(second.output, str)
    # The server saw the first turn: the second prompt is longer than the first by at least it.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens


@pytest.mark.anyio
async def test_the_repetition_guard_bounds_a_model_that_calls_again(
    local_server: LocalServer,
) -> None:
    """This server does not show tool results to the model, so it tends to call again."""
    calls: list[str] = []
    limit = 2
    agent = Agent(
        local_server.model(),
        instructions=INSTRUCTIONS,
        tools=[weather_tool(calls)],
        settings=TOOLS,
        limits=Limits(max_requests=6, max_repeated_calls=limit),
    )
    outcome, messages = await _bounded_run(agent, "What is the weather in Oslo?")
    assert outcome in (
        "finished",
        "max_repeated_calls",
        "max_requests",
        "context_length",
        "tool_retries",
    )
    if outcome == "max_repeated_calls":
        refused = [m for m in messages if isinstance(m, ToolMessage) and m.is_error]
        assert refused and "Not run" in refused[-1].content
    made = tool_calls(messages)
    assert made
    run_lengths = _longest_run_of_same_call(calls)
    assert run_lengths <= limit, f"the same call ran {run_lengths} times in a row"


async def _bounded_run(agent: Agent[Any], prompt: str) -> tuple[str, list[Any]]:
    """Run to one of the bounded outcomes of a model that may call the same tool again."""
    try:
        result = await agent.run(prompt)
    except UsageLimitExceeded as exc:
        return exc.limit, exc.messages
    except ToolExecutionError as exc:  # arguments wrong three times: the tool's retry budget
        return "tool_retries", exc.messages
    except ContextLengthError as exc:  # a turn of many calls filled the small context
        return "context_length", list(getattr(exc, "messages", None) or [])
    return "finished", result.messages


def _longest_run_of_same_call(calls: list[str]) -> int:
    longest = current = 0
    previous: str | None = None
    for city in calls:
        current = current + 1 if city == previous else 1
        previous = city
        longest = max(longest, current)
    return longest


def test_run_sync_against_the_real_server(local_server: LocalServer) -> None:
    agent = Agent(local_server.model(), output_type=Person, settings=GREEDY)
    result = agent.run_sync("Extract the person: Chen is 25 years old.")
    assert isinstance(result.output, Person) and result.output.age >= 0
