"""`OpenAICompatible`: learning from the start, model settings, whole requests, its client."""

from __future__ import annotations

import gc

import anyio
import pytest
from structlog.testing import capture_logs
from support.local_server import Reply
from support.quirk_runs import ANSWER, PROMPT, add, learned, model_for
from support.quirk_server import (
    DROP_TOOL_RESULTS,
    DROP_TOOLS,
    NULL_CONTENT_500,
    STREAM_TOOLS_CUT,
    STREAM_TOOLS_EMPTY,
    STREAM_TOOLS_NOTHING,
    QuirkServer,
    is_check,
)
from support.recording_client import OK, REQUEST, Recorder

from agentloop import (
    LLAMA_CPP_PROFILE,
    Agent,
    IncompleteStreamError,
    InternalServerError,
    ModelSettings,
    OpenAICompatible,
    TextDelta,
    ToolCallStarted,
)
from agentloop._errors import UsageError
from agentloop._messages import ModelRequest, UserMessage
from agentloop._wire.profiles import DEFAULT_PROFILE, OPTIMISTIC_PROFILE
from agentloop._wire.providers import OpenAI, OpenRouter

pytestmark = pytest.mark.anyio


async def test_a_server_that_streams_nothing_with_tools_is_asked_whole() -> None:
    """llama-cpp-python's function-calling handler streams an empty answer when tools are
    offered: the empty stream teaches it once, its request is sent whole and given as deltas,
    and the next request with tools is sent whole from the start."""
    with QuirkServer({STREAM_TOOLS_EMPTY}) as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            events = [event async for event in stream]
    assert stream.result.output == ANSWER
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["add"]
    assert [e.text for e in events if isinstance(e, TextDelta)] == [ANSWER]
    kinds = [
        "check" if is_check(b) else "stream" if b.get("stream") else "whole" for b in server.bodies
    ]
    # tools offered / not; the empty stream, its whole resend; results plain / padded; whole
    assert kinds == ["check", "check", "stream", "whole", "check", "check", "whole"]
    assert learned(logs) == ["stream_tools"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(stream_tools=False)
    assert [r.usage_reported for r in stream.result.requests] == [True, True]


async def test_a_stream_with_tools_that_ends_with_no_event_at_all_is_asked_whole() -> None:
    """llama-cpp-python 0.3.36, given ``tool_choice: "auto"``, ends such a stream with no event
    and no [DONE]: a learning model takes that as the same quirk, not as a broken stream."""
    with QuirkServer({STREAM_TOOLS_NOTHING}) as server, capture_logs() as logs:
        model = model_for(server)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            events = [event async for event in stream]
    assert stream.result.output == ANSWER
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["add"]
    kinds = [
        "check" if is_check(b) else "stream" if b.get("stream") else "whole" for b in server.bodies
    ]
    assert kinds == ["check", "check", "stream", "whole", "check", "check", "whole"]
    assert learned(logs) == ["stream_tools"]
    assert model.profile == OPTIMISTIC_PROFILE.replace(stream_tools=False)


async def drain(agent: Agent[str]) -> None:
    async with agent.run_stream(PROMPT) as stream:
        async for _ in stream:
            pass


async def test_a_stream_with_tools_cut_off_after_a_word_stays_an_error() -> None:
    """Only a stream with nothing in it is the quirk: one that said something and was cut off
    is a broken answer, raised as such, and teaches the model nothing."""
    with QuirkServer({STREAM_TOOLS_CUT}) as server, capture_logs() as logs:
        model = model_for(server)
        with pytest.raises(IncompleteStreamError) as caught:
            await drain(Agent(model, tools=[add]))
    assert caught.value.partial.message.content == "Let"
    assert [b.get("stream", False) for b in server.bodies if not is_check(b)] == [True]
    assert learned(logs) == []
    assert model.profile.stream_tools


async def test_llama_cpp_profile_sends_requests_with_tools_whole_in_a_stream() -> None:
    with QuirkServer({STREAM_TOOLS_EMPTY, DROP_TOOL_RESULTS}) as server, capture_logs() as logs:
        model = model_for(server, profile=LLAMA_CPP_PROFILE)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            events = [event async for event in stream]
    assert stream.result.output == ANSWER
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["add"]
    assert [e.text for e in events if isinstance(e, TextDelta)] == [ANSWER]
    assert [b.get("stream", False) for b in server.bodies] == [False, False]
    assert server.bodies[1]["messages"][-1]["content"].startswith("Result of add")
    assert learned(logs) == []


async def test_a_model_built_with_a_profile_never_learns() -> None:
    with QuirkServer({NULL_CONTENT_500, DROP_TOOLS}) as server, capture_logs() as logs:
        model = model_for(server, profile=OPTIMISTIC_PROFILE)
        assert not model.learns
        # DROP_TOOLS: the model never calls; no silent-drop check either
        result = await Agent(model, tools=[add]).run(PROMPT)
        assert result.output == ANSWER and len(server.bodies) == 1
    with QuirkServer({NULL_CONTENT_500}) as server, capture_logs() as more:
        model = model_for(server, profile=OPTIMISTIC_PROFILE)
        with pytest.raises(InternalServerError, match="validation error"):
            await Agent(model, tools=[add]).run(PROMPT)
    assert len(server.bodies) == 2 and server.errors == [500]  # the 500 is final at once
    assert learned(logs) == learned(more) == []
    assert model.profile is OPTIMISTIC_PROFILE and "profile=OPTIMISTIC_PROFILE" in repr(model)


async def test_a_learning_model_starts_optimistic() -> None:
    with QuirkServer() as server:
        model = model_for(server)
        assert model.learns and model.profile is OPTIMISTIC_PROFILE
        assert "profile=learning" in repr(model)


async def test_model_settings_are_defaults_under_the_agents_and_the_runs() -> None:
    defaults = ModelSettings(max_completion_tokens=64, temperature=0.1, seed=7)
    with QuirkServer() as server:
        model = model_for(server, settings=defaults)
        agent = Agent(model, settings=ModelSettings(temperature=0.5))
        await agent.run(PROMPT)
        await agent.run(PROMPT, settings=ModelSettings(max_completion_tokens=32))
        await Agent(model).run(PROMPT)
    first, second, third = server.bodies
    assert (first["max_tokens"], first["temperature"], first["seed"]) == (64, 0.5, 7)
    assert (second["max_tokens"], second["temperature"], second["seed"]) == (32, 0.5, 7)
    assert (third["max_tokens"], third["temperature"], third["seed"]) == (64, 0.1, 7)


async def test_model_settings_reach_streams_and_checks() -> None:
    defaults = ModelSettings(temperature=0.25)
    with QuirkServer() as server:
        model = model_for(server, settings=defaults)
        async with Agent(model, tools=[add]).run_stream(PROMPT) as stream:
            async for _ in stream:
                pass
    assert all(b["temperature"] == 0.25 for b in server.bodies)


@pytest.mark.anyio
async def test_compatible_server_without_key_and_azure_style_auth():
    recorder = Recorder()
    local = OpenAICompatible(
        "llama", base_url="http://127.0.0.1:8080/v1", http_client=recorder.client()
    )
    assert local.profile is OPTIMISTIC_PROFILE and local.learns  # no profile: learns one
    assert local.system == "openai-compatible"
    await local.request(REQUEST)
    assert "authorization" not in recorder.requests[0].headers
    azure = OpenAICompatible(
        "gpt-4o",
        base_url="https://res.example.invalid/openai/deployments/gpt-4o",
        api_key="azure-SECRET",
        api_key_header="api-key",
        query_params={"api-version": "2024-10-21"},
        http_client=recorder.client(),
    )
    await azure.request(REQUEST)
    sent = recorder.requests[1]
    assert sent.headers["api-key"] == "azure-SECRET"
    assert "authorization" not in sent.headers
    assert sent.url.params["api-version"] == "2024-10-21"
    assert sent.url.path == "/openai/deployments/gpt-4o/chat/completions"


@pytest.mark.anyio
async def test_settings_extra_headers_are_sent_and_key_not_logged():
    from agentloop._settings import ModelSettings

    recorder = Recorder()
    model = OpenAICompatible(
        "x", base_url="http://h/v1", api_key="sk-SECRET", http_client=recorder.client()
    )
    request = ModelRequest(
        (UserMessage("hi"),), settings=ModelSettings(extra_headers={"X-Trace": "t1"})
    )
    with capture_logs() as logs:
        await model.request(request)
    assert recorder.requests[0].headers["x-trace"] == "t1"
    assert logs
    assert "SECRET" not in repr(logs)


@pytest.mark.anyio
async def test_user_client_is_not_closed():
    recorder = Recorder()
    client = recorder.client()
    async with OpenAICompatible("x", base_url="http://h/v1", http_client=client) as model:
        await model.request(REQUEST)
    assert not client.is_closed
    await model.aclose()
    assert not client.is_closed
    await client.aclose()


@pytest.mark.anyio
async def test_owned_client_is_closed_by_aclose():
    model = OpenAICompatible("x", base_url="http://h/v1")
    client = model._endpoint.transports.get()
    assert model._endpoint.transports.get() is client
    await model.aclose()
    assert client.is_closed
    assert model._endpoint.transports.get() is not client
    await model.aclose()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_one_model_across_two_event_loops(backend):
    """`run_sync` starts a new loop each time: the model's own client must follow."""
    from support.local_server import LocalServer

    with LocalServer() as server:
        server.script(Reply(200, json_body=OK), Reply(200, json_body=OK))
        model = OpenAICompatible("x", base_url=server.base_url)
        clients = []

        async def once():
            clients.append(model._endpoint.transports.get())
            return await model.request(REQUEST)

        first = anyio.run(once, backend=backend)
        second = anyio.run(once, backend=backend)
        assert first.message.content == second.message.content == "hi"
        assert clients[0] is not clients[1]
        assert len(server.requests) == 2
    gc.collect()


def test_one_model_across_backends():
    from support.local_server import LocalServer

    with LocalServer() as server:
        server.script(Reply(200, json_body=OK), Reply(200, json_body=OK))
        model = OpenAICompatible("x", base_url=server.base_url)
        assert anyio.run(model.request, REQUEST, backend="asyncio").message.content == "hi"
        assert anyio.run(model.request, REQUEST, backend="trio").message.content == "hi"


PROVIDER_CLASSES = [
    pytest.param(OpenAI, id="OpenAI"),
    pytest.param(OpenRouter, id="OpenRouter"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("cls", PROVIDER_CLASSES)
async def test_providers_take_max_connections_query_params_and_settings(cls):
    """The options `OpenAICompatible` always had reach a real request through each provider."""
    from support.local_server import LocalServer

    from agentloop._settings import ModelSettings

    with LocalServer() as server:
        server.script(Reply(200, json_body=OK))
        model = cls(
            "m",
            base_url=server.base_url,
            api_key="k",
            max_connections=3,
            query_params={"api-version": "2024-10-21"},
            settings=ModelSettings(temperature=0.5),
        )
        await model.request(REQUEST)
        slots = model._endpoint.transports.slots()  # the owned client's connection slots
        assert slots is not None and slots.total == 3
        await model.aclose()
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.query == {"api-version": ["2024-10-21"]}
    assert sent.json()["temperature"] == 0.5


@pytest.mark.parametrize("cls", PROVIDER_CLASSES)
def test_providers_check_max_connections(cls):
    with pytest.raises(UsageError, match="max_connections"):
        cls("m", max_connections=0)


def test_every_model_class_takes_every_client_option():
    """`ClientOptions` is the one list of shared options: every class accepts all of it."""
    from agentloop import ClientOptions, RateLimit, RetryPolicy
    from agentloop._settings import ModelSettings

    limit = RateLimit(requests_per_minute=60)
    options: ClientOptions = {
        "api_key": "k",
        "headers": {"X-A": "1"},
        "timeout": 30.0,
        "max_retries": 1,
        "retry": RetryPolicy(max_retries=4),
        "http_client": None,
        "max_connections": 2,
        "query_params": {"q": "1"},
        "profile": DEFAULT_PROFILE,
        "extra_body": {"seed": 1},
        "settings": ModelSettings(temperature=0.1),
        "rate_limit": limit,
    }
    assert set(options) == ClientOptions.__optional_keys__  # the test covers every option
    models = [
        OpenAI("m", **options),
        OpenRouter("m", **options),
        OpenAICompatible("m", base_url="http://h/v1", **options),
    ]
    for model in models:
        assert model.profile is DEFAULT_PROFILE
        assert model.default_headers["X-A"] == "1"
        assert model.extra_body["seed"] == 1
        assert model._endpoint.url.endswith("/chat/completions?q=1")
        assert model._endpoint.policy.max_retries == 4
        assert model._endpoint.rate_limit is limit


@pytest.mark.parametrize(
    "build",
    [lambda: OpenAI("m", max_conections=2),  # pyright: ignore[reportCallIssue]
     lambda: OpenRouter("m", max_conections=2),  # pyright: ignore[reportCallIssue]
     lambda: OpenAICompatible("m", base_url="http://h/v1", max_conections=2)],  # pyright: ignore[reportCallIssue]
)  # fmt: skip
def test_a_misspelt_option_is_a_type_error(build):
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_conections'"):
        build()
