"""Conformance: each real local server, driven exactly as a user writes it.

Two ways per server: `Agent(server.model(), ...)` (the profile `LocalServer` knows) and
`OpenAICompatible(name, base_url=...)` with no profile and no settings (a model that learns the
server from its answers). SmolLM2-135M is tiny: these tests assert what must hold for any real
model behind a correct client (the requests are accepted, calls are valid against their schemas,
every call is answered, output is valid where the server can enforce it, runs end), never its
wisdom. Every run is bounded in time and in requests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import jsonschema
import pytest
from pydantic import BaseModel, Field

from agentloop import (
    Agent,
    APIError,
    AssistantMessage,
    ContextLengthError,
    Limits,
    Model,
    OpenAICompatible,
    OutputTruncatedError,
    OutputValidationError,
    TextDelta,
    ToolCallFinished,
    ToolExecutionError,
    ToolMessage,
    UsageLimitExceeded,
    tool,
)
from agentloop.local import LocalModel, LocalServer

pytestmark = pytest.mark.anyio

RUN_SECONDS = 120  # one run of a tiny model on 2 cores: seconds; this only catches a hang
WAYS = ("local", "plain")


class Person(BaseModel):
    name: str = Field(max_length=40)
    age: int


@pytest.fixture(params=WAYS)
def model(request: pytest.FixtureRequest, local_server: LocalServer) -> Model:
    if request.param == "local":
        return local_server.model()
    return OpenAICompatible(local_server.model_path.stem, base_url=local_server.base_url)


def weather(calls: list[str]) -> Any:
    @tool
    def get_weather(city: Annotated[str, Field(max_length=40)]) -> dict[str, Any]:
        """Current weather in a city.

        Args:
            city: the city name, e.g. "Lisbon".
        """
        calls.append(city)
        return {"city": city, "celsius": 22.0, "sky": "sunny"}

    return get_weather


async def bounded(run: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
    """(outcome, result or error) of a run that must end within RUN_SECONDS."""
    with anyio.fail_after(RUN_SECONDS):
        try:
            return "finished", await run()
        except UsageLimitExceeded as exc:
            return exc.limit, exc
        except (
            OutputValidationError,
            OutputTruncatedError,
            ContextLengthError,
            ToolExecutionError,
        ) as exc:
            return type(exc).__name__, exc


def assert_calls_valid_and_answered(messages: list[Any], tools: list[Any]) -> int:
    """Every call is answered; every call that ran had arguments valid against its tool's
    schema (one the model got wrong is answered with the error, for it to try again). Returns
    how many calls ran (a repeat answered from an earlier result did not)."""
    schemas = {t.name: t.parameters for t in tools}
    reused = "not run again"  # a repeat answered from an earlier call's result
    answers = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    calls = [c for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls]
    ran = 0
    for call in calls:
        assert call.id in answers, f"call {call.id} was never answered"
        if answers[call.id].is_error:
            continue
        assert call.name in schemas, f"unknown tool {call.name!r} ran"
        jsonschema.validate(json.loads(call.arguments), schemas[call.name])
        ran += reused not in answers[call.id].content
    return ran


ENDS = ("finished", "max_repeated_calls", "max_requests", "ContextLengthError")
# A tool whose arguments the model got wrong three times ends the run (its retry budget).
TOOL_ENDS = (*ENDS, "ToolExecutionError")


async def test_a_tool_loop_of_three_turns_or_more(model: Model) -> None:
    calls: list[str] = []
    tools = [weather(calls)]
    agent = Agent(
        model,
        instructions="You plan trips. Use the tools.",
        tools=tools,
        limits=Limits(max_requests=6, max_repeated_calls=2),
    )
    outcome, end = await bounded(
        lambda: agent.run("What is the weather in Lisbon, then in Porto, then in Faro?")
    )
    assert outcome in TOOL_ENDS
    ran = assert_calls_valid_and_answered(end.messages, tools)
    made = [c for m in end.messages if isinstance(m, AssistantMessage) for c in m.tool_calls]
    assert made, "the model made no tool call"
    assert ran == len(calls)
    # A request the server refused for its length was still sent: the loop went on to it. A
    # sampling server (llama-cpp-python) lets the model ramble inside a call's arguments, and the
    # transcript can pass the window by the third request.
    sent = end.usage.requests + (outcome == "ContextLengthError")
    assert sent >= 3, f"{outcome} after {end.usage.requests} answered requests"


async def test_parallel_calls_are_all_run_and_answered_in_order(model: Model) -> None:
    calls: list[str] = []
    tools = [weather(calls)]
    agent = Agent(model, tools=tools, limits=Limits(max_requests=4, max_repeated_calls=2))
    outcome, end = await bounded(
        lambda: agent.run("Get the weather in Paris and the weather in Rome, both at once.")
    )
    assert outcome in TOOL_ENDS
    messages = end.messages
    assert_calls_valid_and_answered(messages, tools)
    for index, message in enumerate(messages):
        if isinstance(message, AssistantMessage) and message.tool_calls:
            answers = messages[index + 1 : index + 1 + len(message.tool_calls)]
            assert [a.tool_call_id for a in answers] == [c.id for c in message.tool_calls]


@pytest.mark.parametrize("mode", ["native", "tool", "prompted"])
async def test_structured_output_in_every_mode(model: Model, mode: str) -> None:
    agent = Agent(model, output_type=Person, output_mode=mode)  # type: ignore[arg-type]
    outcome, end = await bounded(lambda: agent.run("Extract the person: Ana is 31 years old."))
    if mode == "prompted":  # nothing on the server holds a tiny model to the schema here
        assert outcome in ("finished", "OutputValidationError", "OutputTruncatedError")
    else:  # the server's grammar does
        assert outcome == "finished", f"{outcome}: {end}"
    if outcome == "finished":
        assert isinstance(end.output, Person)
        Person.model_validate(end.output.model_dump())
    assert end.usage.requests <= 3  # one ask and at most output_retries (2) re-asks


async def test_a_streamed_run_gives_the_answer_in_pieces(model: Model) -> None:
    agent = Agent(model, output_type=Person)
    texts: list[str] = []
    with anyio.fail_after(RUN_SECONDS):
        async with agent.run_stream("Extract the person: Bob is 40 years old.") as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    texts.append(event.text)
    assert isinstance(stream.result.output, Person)
    assert Person.model_validate_json("".join(texts)) == stream.result.output


async def test_a_streamed_tool_run_reports_its_calls(model: Model) -> None:
    calls: list[str] = []
    tools = [weather(calls)]
    agent = Agent(model, tools=tools, limits=Limits(max_requests=3, max_repeated_calls=1))
    finished: list[ToolCallFinished] = []

    async def run() -> Any:
        async with agent.run_stream("What is the weather in Oslo?") as stream:
            async for event in stream:
                if isinstance(event, ToolCallFinished):
                    finished.append(event)
        return stream.result

    outcome, end = await bounded(run)
    assert outcome in TOOL_ENDS
    ran = assert_calls_valid_and_answered(end.messages, tools)
    assert ran == len(calls)
    if isinstance(model, LocalModel):  # the server's own function-calling grammar: a call
        assert any(isinstance(m, AssistantMessage) and m.tool_calls for m in end.messages)
    assert len(finished) >= ran  # every call, run or refused, is reported as it finishes


async def test_a_message_list_prompt(model: Model) -> None:
    agent = Agent(model)
    prompt = [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "My name is Ana."},
        {"role": "assistant", "content": "Nice to meet you, Ana."},
        {"role": "user", "content": "What is my name?"},
    ]
    outcome, end = await bounded(lambda: agent.run(prompt))
    assert outcome == "finished"
    assert isinstance(end.output, str) and end.output.strip()
    assert end.usage.requests == 1


async def test_twenty_runs_in_a_row_end(model: Model) -> None:
    """No crash, no hang: each run ends (an answer or a bounded, typed outcome)."""
    calls: list[str] = []
    tools = [weather(calls)]
    agent = Agent(model, tools=tools, limits=Limits(max_requests=3, max_repeated_calls=1))
    outcomes: list[str] = []
    for index in range(20):
        city = ("Lisbon", "Oslo", "Rome", "Faro")[index % 4]
        try:
            outcome, _ = await bounded(lambda city=city: agent.run(f"Weather in {city}?"))
        except APIError as exc:  # the server failed a request: never acceptable here
            pytest.fail(f"run {index}: {type(exc).__name__}: {exc}")
        outcomes.append(outcome)
    assert len(outcomes) == 20


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_a_tool_run_and_a_streamed_run_end(model: Model) -> None:
    """The suite runs on asyncio (the offline suite runs everything on both); the same loop
    on trio against the real server."""
    await test_a_tool_loop_of_three_turns_or_more(model)
    await test_a_streamed_run_gives_the_answer_in_pieces(model)
