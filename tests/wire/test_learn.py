"""A model built without a profile learns each server's quirks from its refusals.

Every test runs an agent as a user writes it, ``Agent(OpenAICompatible("m", base_url=...),
tools=[...], output_type=...)`` with no profile and no settings, against `QuirkServer`, which
answers with the error texts of the real servers (llama-cpp-python, llama.cpp's server, Ollama,
LM Studio, vLLM, OpenAI) or drops things silently as their chat templates do. Each test checks
that the run completes, that each feature was downgraded exactly once (one ``profile_learned``
event, and the next run sends the learned form the first time), that no request more than the
minimum was sent (exact counts, the silent-drop checks included), and what the next body holds.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs
from support.local_server import Reply
from support.quirk_runs import (
    ANSWER,
    PROMPT,
    add,
    learned,
    model_for,
    run_twice,
    system_text,
    tool_ran,
)
from support.quirk_server import (
    GATEWAY_STREAM_OPTIONS_TEXT,
    JSON_OBJECT_400,
    JSON_SCHEMA_400,
    JSON_SCHEMA_500,
    LLAMA_SERVER_JSON_SCHEMA,
    LLAMA_SERVER_NO_JINJA,
    LM_STUDIO_JSON_OBJECT,
    LM_STUDIO_NULL_CONTENT,
    MAX_TOKENS_400,
    NO_AUTO_TOOL_CHOICE,
    NO_JINJA_TOOLS,
    NO_TOOL_PARSER,
    NULL_CONTENT_400,
    NULL_CONTENT_500,
    OLLAMA_NO_TOOLS,
    OLLAMA_NO_TOOLS_TEXT,
    OPENAI_MAX_TOKENS_TEXT,
    REQUIRED_500_EMPTY,
    STREAM_OPTIONS_400,
    STREAM_OPTIONS_VLLM,
    VLLM_AUTO_TEXT,
    VLLM_REQUIRED_TEXT,
    QuirkServer,
    is_check,
    llama_server_error,
    openai_400,
)

from agentloop import (
    Agent,
    AssistantMessage,
    BadRequestError,
    ContextLengthError,
    InternalServerError,
    ModelSettings,
    TextDelta,
    ToolCallStarted,
)
from agentloop._wire.http import MAX_LESSONS
from agentloop._wire.learn import about_the_request, lesson
from agentloop._wire.profiles import OPTIMISTIC_PROFILE, ModelProfile
from agentloop._wire.retry import RetryPolicy
from agentloop._wire.status import status_error

pytestmark = pytest.mark.anyio


class Total(BaseModel):
    total: int
    note: str


def assistant_contents(body: Mapping[str, Any]) -> list[Any]:
    return [m.get("content", "<absent>") for m in body["messages"] if m["role"] == "assistant"]


@pytest.mark.parametrize("quirk", [NULL_CONTENT_500, NULL_CONTENT_400])
async def test_null_assistant_content_is_learned_once(quirk: str) -> None:
    """llama-cpp-python (500, pydantic) and LM Studio (400) refuse ``content: null`` on a
    tool-call turn: the refused request is sent again at once with ``""``, nothing retried."""
    with QuirkServer({quirk}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    assert tool_ran(first.messages) and tool_ran(second.messages)
    bodies = server.bodies
    # the call, the refused answer request, its resend, and the tool-results check (once)
    assert sent == 4
    assert server.errors == [500 if quirk == NULL_CONTENT_500 else 400]
    assert assistant_contents(bodies[1]) == [None]
    assert assistant_contents(bodies[2]) == [""]
    assert bodies[1]["messages"][2] == bodies[2]["messages"][2]  # nothing else changed
    assert is_check(bodies[3]) and assistant_contents(bodies[3]) == [""]
    # the second run: two requests, "" the first time
    assert len(bodies) == sent + 2
    assert assistant_contents(bodies[sent + 1]) == [""]
    assert learned(logs) == ["null_content"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(null_content_with_tool_calls=False)
    assert first.usage.retries == 0 and all(r.retries == 0 for r in first.requests)
    assert first.usage.requests == 2  # the run's own turns; the lesson is not a turn


async def test_a_lesson_spends_no_retry() -> None:
    """With no retries at all, the refused request is still resent once it is learned."""
    with QuirkServer({NULL_CONTENT_500}) as server:
        result = await Agent(model_for(server, max_retries=0), tools=[add]).run(PROMPT)
    assert result.output == ANSWER
    assert server.errors == [500]


async def test_null_content_in_the_logged_event_says_what_the_server_said() -> None:
    with QuirkServer({NULL_CONTENT_500}) as server, capture_logs() as logs:
        await Agent(model_for(server), tools=[add]).run(PROMPT)
    (event,) = [e for e in logs if e["event"] == "profile_learned"]
    assert event["model"] == "m" and event["log_level"] == "warning"
    assert event["server_said"].startswith("500 7 validation errors:")
    assert len(event["server_said"]) <= 300  # the message is cut, not the whole body


@pytest.mark.parametrize("quirk", [JSON_SCHEMA_500, JSON_SCHEMA_400])
async def test_json_schema_output_falls_back_to_json_object_with_schema(quirk: str) -> None:
    """llama-cpp-python (500) and older llama.cpp servers (400) refuse a json_schema response
    format: the schema goes as ``{"type": "json_object", "schema": ...}`` and in the prompt."""
    with QuirkServer({quirk}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, output_type=Total)
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == Total(total=2, note="x")
    bodies = server.bodies
    assert sent == 2 and len(bodies) == 3
    assert bodies[0]["response_format"]["type"] == "json_schema"
    for body in bodies[1:]:
        fmt = body["response_format"]
        assert fmt["type"] == "json_object"
        assert fmt["schema"] == bodies[0]["response_format"]["json_schema"]["schema"]
        assert "valid against this JSON schema" in system_text(body)
    assert "JSON schema" not in json.dumps(bodies[0]["messages"])
    assert learned(logs) == ["response_format"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(response_format="json_object_schema")
    # the schema prompt is a wire detail: the transcript does not keep it
    assert all("JSON schema" not in str(getattr(m, "content", "")) for m in second.messages)


async def test_required_tool_choice_refused_with_an_empty_500_is_learned() -> None:
    """llama-cpp-python's chatml-function-calling handler asserts tool_choice == "auto": a
    request with "required" gets a 500 whose message is empty (measured on 0.3.36)."""
    with QuirkServer({REQUIRED_500_EMPTY}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add], output_type=Total, output_mode="tool")
        result = await agent.run(PROMPT)
    assert result.output == Total(total=2, note="x")
    assert learned(logs) == ["tool_choice_required"]
    assert server.errors == [500]
    assert server.bodies[1]["tool_choice"] == "auto"
    assert len(server.bodies) == 4  # refused, resent, final_result, the tool-results check


@pytest.mark.parametrize(
    ("quirk", "status"),
    [(OLLAMA_NO_TOOLS, 400), (NO_AUTO_TOOL_CHOICE, 400), (NO_JINJA_TOOLS, 500)],
)
async def test_a_server_without_tools_gets_prompted_tools(quirk: str, status: int) -> None:
    """Ollama ("does not support tools"), vLLM without --enable-auto-tool-choice and llama.cpp's
    server without --jinja refuse tools: they go in the system prompt, calls come back as JSON
    (held to a call-or-answer schema), results as user turns, the ``{"answer"}`` unwrapped."""
    with QuirkServer({quirk}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    assert tool_ran(first.messages) and tool_ran(second.messages)
    bodies = server.bodies
    assert sent == 3 and len(bodies) == 5  # refused, resent (a call), the answer; then 2
    assert server.errors == [status]
    assert "tools" in bodies[0]
    for body in bodies[1:]:
        assert "tools" not in body and "tool_choice" not in body
        assert "parallel_tool_calls" not in body
        assert "- add: Add two integers." in system_text(body)
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "reply"
    results = bodies[2]["messages"][-1]
    assert results["role"] == "user" and results["content"].startswith("Result of add (call ")
    assert json.loads(bodies[2]["messages"][-2]["content"]) == {
        "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 2}}]
    }
    assert learned(logs) == ["tools"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(tool_mode="prompted")


async def test_prompted_tools_with_structured_output() -> None:
    """Ollama without tools and a Pydantic output: the reply is held to a call or the output."""
    with QuirkServer({OLLAMA_NO_TOOLS}) as server:
        result = await Agent(model_for(server), tools=[add], output_type=Total).run(PROMPT)
    assert result.output == Total(total=2, note="x")
    assert tool_ran(result.messages)
    assert len(server.bodies) == 3
    schema = server.bodies[1]["response_format"]["json_schema"]["schema"]
    calls, answer = schema["anyOf"]
    assert "tool_calls" in calls["properties"]
    assert answer["required"] == ["total", "note"]


async def test_vllm_13_without_a_parser_refuses_required_too() -> None:
    """vLLM 0.13+: "required" needs --tool-call-parser as well; the tool mode learned from it is
    the prompted one (auto would be refused just the same)."""
    with QuirkServer({NO_AUTO_TOOL_CHOICE, NO_TOOL_PARSER}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add], output_type=Total, output_mode="tool")
        result = await agent.run(PROMPT)
    assert result.output == Total(total=2, note="x")
    assert server.errors == [400]
    assert learned(logs) == ["tools"]
    assert model.profile.tool_mode == "prompted"


async def test_stream_options_refused_is_learned_in_a_stream() -> None:
    with QuirkServer({STREAM_OPTIONS_400}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model)
        for _ in range(2):
            async with agent.run_stream(PROMPT) as stream:
                texts = [e.text for e in [e async for e in stream] if isinstance(e, TextDelta)]
            assert "".join(texts) == ANSWER == stream.result.output
    bodies = server.bodies
    assert len(bodies) == 3 and server.errors == [400]
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert all(b["stream"] is True and "stream_options" not in b for b in bodies[1:])
    assert learned(logs) == ["stream_options"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(stream_usage=False)
    assert not stream.result.requests[-1].usage_reported  # no usage chunk without stream_options


async def test_stream_options_refused_with_vllms_message_is_learned() -> None:
    with QuirkServer({STREAM_OPTIONS_VLLM}) as server, capture_logs() as logs:
        async with Agent(model_for(server)).run_stream(PROMPT) as stream:
            async for _ in stream:
                pass
    assert stream.result.output == ANSWER
    assert learned(logs) == ["stream_options"]
    assert len(server.bodies) == 2


async def test_max_tokens_refused_is_learned_from_a_model_default() -> None:
    """OpenAI's reasoning models refuse ``max_tokens``: the model-level default cap is resent as
    ``max_completion_tokens``."""
    settings = ModelSettings(max_completion_tokens=64)
    with QuirkServer({MAX_TOKENS_400}) as server, capture_logs() as logs:
        model = model_for(server, settings=settings)
        agent = Agent(model)
        first, second, sent = await run_twice(server, model, agent)
    assert first.output == second.output == ANSWER
    bodies = server.bodies
    assert sent == 2 and len(bodies) == 3
    assert bodies[0]["max_tokens"] == 64 and "max_completion_tokens" not in bodies[0]
    for body in bodies[1:]:
        assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert learned(logs) == ["max_tokens_field"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(max_tokens_field="max_completion_tokens")


async def test_max_tokens_refused_is_learned_by_a_silent_drop_check() -> None:
    """With no cap set, the first ``max_tokens`` is the one-token check's: it learns it, and
    the check itself is resent."""
    with QuirkServer({MAX_TOKENS_400}) as server, capture_logs() as logs:
        result = await Agent(model_for(server), tools=[add]).run(PROMPT)
    assert result.output == ANSWER
    bodies = server.bodies
    assert len(bodies) == 4  # the call, the answer, the check refused, the check resent
    assert [is_check(b) for b in bodies] == [False, False, True, True]
    assert bodies[2]["max_tokens"] == 1 and bodies[3]["max_completion_tokens"] == 1
    assert learned(logs) == ["max_tokens_field"]


async def test_response_format_steps_down_to_none_through_each_refusal() -> None:
    """A server that refuses json_schema (llama.cpp's 400) and json_object (LM Studio's 400):
    one step per refusal, then no response_format and the schema said once in the prompt."""
    with QuirkServer({JSON_SCHEMA_400, JSON_OBJECT_400}) as server, capture_logs() as logs:
        model = model_for(server)
        result = await Agent(model, output_type=Total).run(PROMPT)
    assert result.output == Total(total=2, note="x")
    kinds = [b.get("response_format", {}).get("type") for b in server.bodies]
    assert kinds == ["json_schema", "json_object", "json_object", None]
    assert "schema" in server.bodies[1]["response_format"]
    assert "schema" not in server.bodies[2]["response_format"]
    assert server.errors == [400, 400, 400]
    assert learned(logs) == ["response_format"] * 3
    assert model.profile.response_format == "none"
    last = json.dumps(server.bodies[-1]["messages"])
    assert last.count("valid against this JSON schema") == 1


async def test_lm_studio_refusing_json_object_never_meets_a_learning_model() -> None:
    with QuirkServer({JSON_OBJECT_400}) as server, capture_logs() as logs:
        result = await Agent(model_for(server), output_type=Total).run(PROMPT)
    assert result.output == Total(total=2, note="x")
    assert len(server.bodies) == 1 and learned(logs) == []


async def test_tools_learned_mid_run_send_the_earlier_calls_as_text() -> None:
    """vLLM without auto tool choice takes the first turn's "required"; the next turn sends
    "auto", is refused, and is resent in prompted mode with the native call as text."""
    with QuirkServer({NO_AUTO_TOOL_CHOICE}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add], settings=ModelSettings(tool_choice="required"))
        result = await agent.run(PROMPT)
    assert result.output == ANSWER
    first, refused, resent = server.bodies
    assert first["tool_choice"] == "required" and refused["tool_choice"] == "auto"
    assert "tools" not in resent and "tool_choice" not in resent
    assert [m["role"] for m in resent["messages"]] == ["system", "user", "assistant", "user"]
    assert json.loads(resent["messages"][2]["content"])["tool_calls"][0]["name"] == "add"
    assert resent["messages"][3]["content"].startswith("Result of add (call call_1):\n4")
    assert learned(logs) == ["tools"]
    # the transcript keeps the native call; only the wire changed
    turn = result.messages[1]
    assert isinstance(turn, AssistantMessage) and turn.tool_calls[0].id == "call_1"


async def test_a_lesson_learned_by_a_check_spares_the_stream() -> None:
    """Streamed, null content: the results check before the second stream meets the 500 and
    learns; the stream itself is sent once, with ``""``."""
    with QuirkServer({NULL_CONTENT_500}) as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            async for _ in stream:
                pass
    assert stream.result.output == ANSWER
    bodies = server.bodies
    # tools offered / not (checks), stream 1; results check refused + resent, padded; stream 2
    assert [is_check(b) for b in bodies] == [True, True, False, True, True, True, False]
    assert server.errors == [500]
    assert assistant_contents(bodies[3]) == [None] and assistant_contents(bodies[4]) == [""]
    assert assistant_contents(bodies[6]) == [""] and bodies[6]["stream"] is True
    assert learned(logs) == ["null_content"]


async def test_tools_refused_before_a_stream_are_learned_by_the_check() -> None:
    """Ollama without tools, streamed: the first check request meets the 400 and learns; the
    streams are prompted from the start."""
    with QuirkServer({OLLAMA_NO_TOOLS}, call_form="fenced") as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            events = [event async for event in stream]
    assert stream.result.output == ANSWER
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["add"]
    assert [e.text for e in events if isinstance(e, TextDelta)] == [ANSWER]
    assert server.errors == [400]
    assert learned(logs) == ["tools"]
    # refused check, its resend, the plain check; two prompted streams
    assert [is_check(b) for b in server.bodies] == [True, True, True, False, False]


async def test_an_unrelated_400_learns_nothing_and_is_raised() -> None:
    context = (
        "This model's maximum context length is 8192 tokens. However, your messages resulted "
        "in 9120 tokens. Please reduce the length of the messages."
    )
    refuse = openai_400(context, "messages", "context_length_exceeded")
    with QuirkServer(refuse=refuse) as server, capture_logs() as logs:
        model = model_for(server)
        with pytest.raises(ContextLengthError):
            await Agent(model, tools=[add], output_type=Total).run(PROMPT)
    assert len(server.bodies) == 1
    assert learned(logs) == [] and model.profile == OPTIMISTIC_PROFILE


async def test_a_value_problem_with_the_cap_is_not_a_missing_field() -> None:
    """``max_tokens is too large`` names the field, but its value is the problem."""
    text = (
        "max_tokens is too large: 100000. This model supports at most 16384 completion tokens, "
        "whereas you provided 100000."
    )
    refuse = openai_400(text, "max_tokens", "invalid_value")
    settings = ModelSettings(max_completion_tokens=100_000)
    with QuirkServer(refuse=refuse) as server, capture_logs() as logs:
        model = model_for(server, settings=settings)
        with pytest.raises(BadRequestError, match="too large"):
            await Agent(model).run(PROMPT)
    assert len(server.bodies) == 1
    assert learned(logs) == [] and model.profile == OPTIMISTIC_PROFILE


async def test_a_500_about_the_request_is_raised_without_retries() -> None:
    """llama.cpp's 500 for an image without a projector is about the request: not retried."""
    text = (
        "image input is not supported - hint: if this is unexpected, you may need to provide "
        "the mmproj"
    )
    prompt = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with QuirkServer(refuse=llama_server_error(500, text)) as server, capture_logs() as logs:
        model = model_for(server)
        with pytest.raises(InternalServerError, match="mmproj"):
            await Agent(model, tools=[add]).run(prompt)
    assert len(server.bodies) == 1
    assert learned(logs) == []


@pytest.mark.parametrize(("status", "attempts"), [(500, 3), (501, 1), (502, 3)])
async def test_a_plain_5xx_is_retried(status: int, attempts: int) -> None:
    refuse = llama_server_error(status, "CUDA error: out of memory")
    with QuirkServer(refuse=refuse) as server, capture_logs() as logs:
        model = model_for(server, retry=RetryPolicy(max_retries=2, initial_delay=0.001))
        with pytest.raises(InternalServerError):
            await Agent(model).run(PROMPT)
    assert len(server.bodies) == attempts
    assert learned(logs) == []
    assert sum(e["event"] == "request_retry" for e in logs) == attempts - 1


async def test_max_lessons_bounds_a_server_that_refuses_everything() -> None:
    """A server that answers OpenAI's max_tokens refusal to every body (whichever field it
    carries): each answer teaches the other field, until MAX_LESSONS; then it is final."""
    settings = ModelSettings(max_completion_tokens=64)
    refuse = openai_400(OPENAI_MAX_TOKENS_TEXT, "max_tokens", "unsupported_parameter")
    with QuirkServer(refuse=refuse) as server, capture_logs() as logs:
        model = model_for(server, settings=settings, max_retries=5)
        with pytest.raises(BadRequestError, match="Unsupported parameter"):
            await Agent(model).run(PROMPT)
    assert len(server.bodies) == MAX_LESSONS + 1
    assert len(learned(logs)) == MAX_LESSONS
    fields = ["max_tokens" in b for b in server.bodies]
    assert fields == [i % 2 == 0 for i in range(MAX_LESSONS + 1)]


async def test_max_lessons_bound_a_refusal_naming_every_feature() -> None:
    text = (
        "Unsupported: tools are not supported, tool_choice 'required', parallel_tool_calls, "
        "strict, response_format json_schema, stream_options, max_tokens"
    )
    settings = ModelSettings(max_completion_tokens=64)
    with QuirkServer(refuse=openai_400(text)) as server, capture_logs() as logs:
        model = model_for(server, settings=settings)
        agent = Agent(model, tools=[add], output_type=Total, output_mode="tool")
        with pytest.raises(BadRequestError):
            await agent.run(PROMPT)
    assert len(server.bodies) == MAX_LESSONS + 1
    features = learned(logs)
    assert len(features) == MAX_LESSONS
    assert features[0] == "tools"  # the most specific first: tools at all
    assert model.profile.tool_mode == "prompted"


class _Gate(QuirkServer):
    """Holds each error answer until `parties` of them are waiting: requests sent together
    are refused together."""

    def __init__(self, *args: Any, parties: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.barrier = threading.Barrier(parties, timeout=5)

    def refusal(self, body: Mapping[str, Any]) -> Reply | None:
        reply = super().refusal(body)
        if reply is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return reply


async def test_concurrent_runs_refused_together_both_complete() -> None:
    with _Gate({NULL_CONTENT_500}) as server, capture_logs() as logs:
        model = model_for(server)
        agent = Agent(model, tools=[add])
        outputs: list[str] = []

        async def one() -> None:
            outputs.append((await agent.run(PROMPT)).output)

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            group.start_soon(one)
    assert outputs == [ANSWER, ANSWER]
    assert server.errors == [500, 500]
    assert learned(logs) == ["null_content"]  # once, whoever learned it


def test_the_profile_learned_is_a_model_profile() -> None:
    assert isinstance(OPTIMISTIC_PROFILE, ModelProfile)
    assert OPTIMISTIC_PROFILE.tool_mode == "native" and OPTIMISTIC_PROFILE.tool_choice


WITH_EVERYTHING: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
        {"role": "tool", "tool_call_id": "c", "content": "x"},
    ],
    "tools": [{"type": "function", "function": {"name": "echo", "strict": True}}],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
    "max_tokens": 16,
    "stream": True,
    "stream_options": {"include_usage": True},
}


LCP_NULL = QuirkServer({NULL_CONTENT_500}).refusal(WITH_EVERYTHING)


LCP_SCHEMA = QuirkServer({JSON_SCHEMA_500}).refusal(WITH_EVERYTHING)


STRICT_ON = OPTIMISTIC_PROFILE.replace(strict_tools=True)


def answered(status: int, error: Any) -> Any:
    return status_error(status, {"error": error})


def body_of(reply: Reply | None) -> Any:
    assert reply is not None and reply.json_body is not None
    return reply.status, reply.json_body["error"]


@pytest.mark.parametrize(
    ("status", "error", "feature", "changes"),
    [
        (*body_of(LCP_NULL), "null_content", {"null_content_with_tool_calls": False}),
        (*body_of(LCP_SCHEMA), "response_format", {"response_format": "json_object_schema"}),
        (400, LM_STUDIO_NULL_CONTENT, "null_content", {"null_content_with_tool_calls": False}),
        (
            400,
            {"message": LLAMA_SERVER_JSON_SCHEMA},
            "response_format",
            {"response_format": "json_object_schema"},
        ),
        (
            400,
            {"message": OLLAMA_NO_TOOLS_TEXT.format(model="m")},
            "tools",
            {"tool_mode": "prompted"},
        ),
        (400, {"message": VLLM_AUTO_TEXT}, "tools", {"tool_mode": "prompted"}),
        (400, {"message": VLLM_REQUIRED_TEXT}, "tools", {"tool_mode": "prompted"}),
        (500, {"message": LLAMA_SERVER_NO_JINJA}, "tools", {"tool_mode": "prompted"}),
        # llama.cpp's server without --jinja: no tools at all, so prompted (not just "auto")
        (
            500,
            {"message": "tool_choice param requires --jinja flag"},
            "tools",
            {"tool_mode": "prompted"},
        ),
        (
            400,
            {"message": GATEWAY_STREAM_OPTIONS_TEXT, "param": "stream_options"},
            "stream_options",
            {"stream_usage": False},
        ),
        (
            400,
            {"message": OPENAI_MAX_TOKENS_TEXT, "param": "max_tokens"},
            "max_tokens_field",
            {"max_tokens_field": "max_completion_tokens"},
        ),
        (
            400,
            {"message": "Unrecognized request argument supplied: parallel_tool_calls"},
            "parallel_tool_calls",
            {"parallel_tool_calls": False},
        ),
        (
            400,
            {"message": "Invalid schema: 'strict' is not supported for this model"},
            "strict",
            {"strict_tools": False},
        ),
    ],
)
def test_lesson_names_the_feature_each_server_refused(
    status: int, error: Any, feature: str, changes: dict[str, Any]
) -> None:
    found = lesson(answered(status, error), WITH_EVERYTHING, STRICT_ON)
    assert found is not None
    assert found.feature == feature
    assert found.profile == STRICT_ON.replace(**changes)


def test_vllms_old_refusal_of_required_downgrades_only_required() -> None:
    text = '`tool_choice` must either be a named tool, "auto", or "none".'
    found = lesson(answered(400, {"message": text}), WITH_EVERYTHING, STRICT_ON)
    assert found is not None and found.feature == "tool_choice_required"
    assert found.profile == STRICT_ON.replace(tool_choice_required=False)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "This model's maximum context length is 8192 tokens. However, you requested 9000."),
        (400, "max_tokens must be at least 1, got 0"),
        (400, "max_tokens is too large: 100000. This model supports at most 16384 tokens."),
        (401, "Incorrect API key provided: does not support tools"),  # not a learnable status
        (429, "Rate limit reached for requests; json_schema"),
        (503, "tools are not supported right now"),
        (400, "Conversation roles must alternate user/assistant/user/assistant/..."),
        (404, "The model `m` does not exist."),
    ],
)
def test_lesson_learns_nothing_from_unrelated_errors(status: int, message: str) -> None:
    assert lesson(answered(status, {"message": message}), WITH_EVERYTHING, STRICT_ON) is None


def test_lm_studios_refusal_of_a_named_choice_stops_sending_tool_choice() -> None:
    text = "Invalid tool_choice type: 'object'. Supported string values: none, auto, required"
    named = {**WITH_EVERYTHING, "tool_choice": {"type": "function", "function": {"name": "e"}}}
    found = lesson(answered(400, text), named, STRICT_ON)  # LM Studio: error is a bare string
    assert found is not None and found.feature == "tool_choice"
    assert found.profile == STRICT_ON.replace(tool_choice=False)


@pytest.mark.parametrize("body", [{}, "(empty body)"], ids=["empty-message", "empty-body"])
def test_an_empty_500_is_learned_only_for_a_required_tool_choice(body: Any) -> None:
    """llama-cpp-python's function-calling handler fails an assert on "required": a 500 that
    says nothing. Only a request that forced a call learns from it."""
    error = (
        status_error(500, {"error": {"message": "", "type": "internal_server_error"}})
        if body == {}
        else status_error(500, b"")
    )
    found = lesson(error, WITH_EVERYTHING, STRICT_ON)
    assert found is not None and found.feature == "tool_choice_required"
    assert found.profile == STRICT_ON.replace(tool_choice_required=False)
    auto = {**WITH_EVERYTHING, "tool_choice": "auto"}
    assert lesson(error, auto, STRICT_ON) is None
    assert lesson(error, WITH_EVERYTHING, found.profile) is None
    assert lesson(status_error(500, {"error": {"message": "boom"}}), auto, STRICT_ON) is None


def test_lesson_downgrades_only_what_the_request_used() -> None:
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for reply in (LCP_NULL, LCP_SCHEMA):
        status, error = body_of(reply)
        assert lesson(answered(status, error), plain, STRICT_ON) is None
    tools_refused = answered(400, {"message": VLLM_AUTO_TEXT})
    assert lesson(tools_refused, plain, STRICT_ON) is None


def test_lesson_returns_none_when_the_profile_already_lacks_the_feature() -> None:
    status, error = body_of(LCP_NULL)
    learned_already = STRICT_ON.replace(null_content_with_tool_calls=False)
    assert lesson(answered(status, error), WITH_EVERYTHING, learned_already) is None


def test_response_format_steps_down_one_at_a_time() -> None:
    refusal = answered(400, LM_STUDIO_JSON_OBJECT)
    body = {**WITH_EVERYTHING, "response_format": {"type": "json_object"}}
    profile = STRICT_ON.replace(response_format="json_object_schema")
    steps: list[str] = []
    while (found := lesson(refusal, body, profile)) is not None:
        profile = found.profile
        steps.append(profile.response_format)
    assert steps == ["json_object", "none"]


def test_lesson_reads_the_param_of_the_error_body() -> None:
    """A terse message with the field in ``param`` (OpenAI's shape) is still understood."""
    error = {"message": "Unknown parameter.", "param": "stream_options"}
    found = lesson(answered(400, error), WITH_EVERYTHING, STRICT_ON)
    assert found is not None and found.feature == "stream_options"


@pytest.mark.parametrize(
    ("status", "message", "about"),
    [
        (500, "7 validation errors: ...", True),
        (500, "Failed to parse messages: Expected 'content' to be a string", True),
        (500, "image input is not supported - hint: you may need to provide the mmproj", True),
        (500, "Error rendering the jinja template", True),
        (500, "TypeError: 'NoneType' object is not iterable", True),
        (501, "Not Implemented", True),
        (500, "CUDA error: out of memory", False),
        (500, "", False),
        (502, "Bad gateway: invalid upstream response", False),
        (503, "validation error", False),
        (400, "validation error", False),
    ],
)
def test_about_the_request(status: int, message: str, about: bool) -> None:
    assert about_the_request(answered(status, {"message": message})) is about
