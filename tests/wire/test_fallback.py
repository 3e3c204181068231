"""`FallbackModel` against real HTTP servers on 127.0.0.1 that fail on command: which errors
fall over, which do not, streams, per-model output modes, and usage and cost per model."""

from __future__ import annotations

import json
import socket

import pytest
from pydantic import BaseModel
from support.local_server import LocalServer, Reply, sse

from agentloop import (
    DEFAULT_PROFILE,
    OPENAI_PROFILE,
    Agent,
    AgentloopError,
    AllModelsFailedError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    FallbackModel,
    IncompleteStreamError,
    InternalServerError,
    ModelInfo,
    OpenAICompatible,
    RateLimitError,
    register_model,
    tool,
)
from agentloop._errors import (
    APIStatusError,
    ContextLengthError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
)
from agentloop._messages import ModelRequest, SystemMessage, UserMessage
from agentloop._wire.fallback import falls_over

PRIMARY, SECOND, THIRD = "fb-primary-m", "fb-second-m", "fb-third-m"
register_model(ModelInfo(PRIMARY, context=8_000, input=1.0, output=2.0))
register_model(ModelInfo(SECOND, context=8_000, input=10.0, output=20.0))
register_model(ModelInfo(THIRD, context=8_000, input=100.0, output=200.0))


def completion(content: str | None = "hello", *, calls=None, prompt=100, completion_=10) -> Reply:
    message: dict = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ]
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "served",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_},
    }
    return Reply(200, json_body=body)


def error(status: int, message: str, code: str | None = None, **headers: str) -> Reply:
    return Reply(status, headers=headers, json_body={"error": {"message": message, "code": code}})


def streamed(text: str) -> Reply:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "served"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}},
    ]
    return Reply.stream(sse(*events))


def model(name: str, server: LocalServer | str, **options) -> OpenAICompatible:
    url = server if isinstance(server, str) else server.base_url
    options.setdefault("profile", DEFAULT_PROFILE)
    return OpenAICompatible(name, base_url=url, max_retries=0, **options)


@pytest.fixture
def second():
    with LocalServer() as running:
        yield running


def closed_url() -> str:
    """A port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        error(503, "overloaded"),
        error(500, "boom"),
        error(429, "slow down", **{"Retry-After": "0"}),
        error(429, "You exceeded your current quota", "insufficient_quota"),
        error(402, "Insufficient credits"),
        error(404, "The model `x` does not exist", "model_not_found"),
        error(400, "This model does not support tools"),
        Reply.drop(),
    ],
    ids=["503", "500", "429", "quota", "402", "404", "no-tools", "dropped"],
)
async def test_a_failing_primary_falls_over_and_the_result_says_who_answered(
    server: LocalServer, second: LocalServer, failure: Reply
) -> None:
    server.script(failure)
    second.script(completion("from the second"))
    fallback = FallbackModel(model(PRIMARY, server), model(SECOND, second))
    result = await Agent(fallback).run("hi")
    assert result.output == "from the second"
    assert len(server.requests) == 1 and len(second.requests) == 1
    assert [r.answered_by for r in result.requests] == [SECOND]
    assert second.requests[0].json()["model"] == SECOND
    # Priced at the model that answered: 100 x $10 + 10 x $20 per million.
    assert result.cost == pytest.approx(1_200 / 1e6)
    assert result.cost_by_model == {SECOND: pytest.approx(1_200 / 1e6)}
    assert result.usage_by_model[SECOND].input_tokens == 100
    assert PRIMARY not in result.usage_by_model


@pytest.mark.anyio
async def test_a_refused_connection_falls_over(second: LocalServer) -> None:
    second.script(completion("up"))
    result = await Agent(FallbackModel(model(PRIMARY, closed_url()), model(SECOND, second))).run(
        "hi"
    )
    assert result.output == "up" and result.requests[0].answered_by == SECOND


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (
            error(400, "Invalid schema for function 'f'", "invalid_function_parameters"),
            BadRequestError,
        ),
        (error(401, "Incorrect API key provided"), AuthenticationError),
    ],
    ids=["400", "401"],
)
async def test_an_error_about_the_request_does_not_fall_over(
    server: LocalServer, second: LocalServer, failure: Reply, kind: type[AgentloopError]
) -> None:
    server.script(failure)
    second.script(completion())
    with pytest.raises(kind) as caught:
        await Agent(FallbackModel(model(PRIMARY, server), model(SECOND, second))).run("hi")
    assert second.requests == []  # never asked
    assert caught.value.messages  # the run's transcript is kept


@pytest.mark.anyio
async def test_on_chooses_what_falls_over(server: LocalServer, second: LocalServer) -> None:
    server.script(error(400, "Invalid schema for function 'f'"))
    second.script(completion("second"))
    fallback = FallbackModel(model(PRIMARY, server), model(SECOND, second), on=(BadRequestError,))
    assert (await Agent(fallback).run("hi")).output == "second"
    server.script(error(503, "overloaded"))
    only_400 = FallbackModel(model(PRIMARY, server), model(SECOND, second), on=(BadRequestError,))
    with pytest.raises(InternalServerError):  # not in `on`: the 503 is the run's error
        await Agent(only_400).run("hi")
    assert len(second.requests) == 1


@pytest.mark.anyio
async def test_every_model_failing_gives_one_error_with_each_failure(
    server: LocalServer, second: LocalServer
) -> None:
    server.script(error(503, "primary down"))
    second.script(error(429, "second busy", **{"Retry-After": "0"}))
    models = (model(PRIMARY, server), model(SECOND, second), model(THIRD, closed_url()))
    with pytest.raises(AllModelsFailedError) as caught:
        await Agent(FallbackModel(*models)).run("hi")
    failures = caught.value.failures
    assert [name for name, _ in failures] == [PRIMARY, SECOND, THIRD]
    kinds = [type(e) for _, e in failures]
    assert kinds[:2] == [InternalServerError, RateLimitError]
    assert issubclass(kinds[2], APIConnectionError)
    assert "primary down" in str(caught.value) and "second busy" in str(caught.value)
    assert caught.value.__cause__ is failures[-1][1]
    assert caught.value.messages and caught.value.usage is not None  # nothing is lost


@pytest.mark.anyio
async def test_the_primary_retries_before_it_falls_over(
    server: LocalServer, second: LocalServer
) -> None:
    server.script(error(503, "a"), error(503, "b"))
    second.script(completion("second"))
    primary = OpenAICompatible(
        PRIMARY, base_url=server.base_url, profile=DEFAULT_PROFILE, max_retries=1
    )
    result = await Agent(FallbackModel(primary, model(SECOND, second))).run("hi")
    assert len(server.requests) == 2 and result.output == "second"


@pytest.mark.anyio
async def test_each_request_starts_again_from_the_primary(
    server: LocalServer, second: LocalServer
) -> None:
    """The primary fails the tool turn, answers the next: usage and cost split by model."""

    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    server.script(error(502, "bad gateway"), completion("done", prompt=50, completion_=5))
    second.script(completion(None, calls=[("lookup", {"key": "a"})]))
    fallback = FallbackModel(model(PRIMARY, server), model(SECOND, second))
    result = await Agent(fallback, tools=[lookup]).run("go")
    assert result.output == "done"
    assert [r.answered_by for r in result.requests] == [SECOND, PRIMARY]
    assert result.cost_by_model == {
        SECOND: pytest.approx(1_200 / 1e6),
        PRIMARY: pytest.approx(60 / 1e6),
    }
    assert result.cost == pytest.approx(1_260 / 1e6)
    assert result.usage_by_model[PRIMARY].requests == 1
    assert result.usage_by_model[SECOND].requests == 1
    assert result.usage.requests == 2


@pytest.mark.anyio
async def test_a_stream_falls_over_before_its_first_byte(
    server: LocalServer, second: LocalServer
) -> None:
    server.script(error(503, "overloaded"))
    second.script(streamed("streamed by the second"))
    agent = Agent(FallbackModel(model(PRIMARY, server), model(SECOND, second)))
    async with agent.run_stream("hi") as stream:
        async for _ in stream:
            pass
    result = stream.result
    assert result.output == "streamed by the second"
    assert result.requests[0].answered_by == SECOND
    assert second.requests[0].json()["stream"] is True


@pytest.mark.anyio
async def test_a_stream_cut_after_its_first_byte_does_not_fall_over(
    server: LocalServer, second: LocalServer
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "served"}
    first = {**chunk, "choices": [{"index": 0, "delta": {"content": "part"}}]}
    server.script(Reply.stream(sse(first, done=False), abort_after=1))
    second.script(streamed("never"))
    agent = Agent(FallbackModel(model(PRIMARY, server), model(SECOND, second)))

    async def read_all() -> None:
        async with agent.run_stream("hi") as stream:
            async for _ in stream:
                pass

    with pytest.raises(IncompleteStreamError):
        await read_all()
    assert second.requests == []


class City(BaseModel):
    name: str
    population: int


@pytest.mark.anyio
async def test_each_model_gets_its_own_output_mode(
    server: LocalServer, second: LocalServer
) -> None:
    """The primary takes a JSON schema; the fallback ignores response formats, so it gets the
    output tool and the instructions that go with it, and its answer is read in that mode."""
    server.script(error(503, "overloaded"))
    answer = {"name": "Oslo", "population": 700_000}
    second.script(completion(None, calls=[("final_result", answer)]))
    primary = model(PRIMARY, server, profile=OPENAI_PROFILE)
    no_format = DEFAULT_PROFILE.replace(response_format="none", output_mode="tool")
    fallback = FallbackModel(primary, model(SECOND, second, profile=no_format))
    agent = Agent(fallback, instructions="Answer about cities.", output_type=City)
    result = await agent.run("Biggest city in Norway?")
    assert result.output == City(name="Oslo", population=700_000)
    first, other = server.requests[0].json(), second.requests[0].json()
    assert first["response_format"]["type"] == "json_schema" and "tools" not in first
    assert "response_format" not in other
    assert [t["function"]["name"] for t in other["tools"]] == ["final_result"]
    assert first["messages"][0]["content"] == "Answer about cities."
    system = other["messages"][0]["content"]
    assert system.startswith("Answer about cities.\n\n") and "final_result" in system


@pytest.mark.anyio
async def test_a_fallback_model_outside_a_run(server: LocalServer, second: LocalServer) -> None:
    server.script(error(500, "boom"))
    second.script(completion("direct"))
    fallback = FallbackModel(model(PRIMARY, server), model(SECOND, second))
    response = await fallback.request(ModelRequest((UserMessage("hi"),)))
    assert response.message.content == "direct"
    await fallback.aclose()


@pytest.mark.parametrize(
    ("error_", "expected"),
    [
        (InternalServerError("x", status_code=503), True),
        (RateLimitError("x", status_code=429), True),
        (InsufficientCreditsError("x", status_code=402), True),
        (NotFoundError("x", status_code=404), True),
        (ContextLengthError("too long", status_code=400), True),
        (APIConnectionError("refused"), True),
        (BadRequestError("tools are not supported by this model", status_code=400), True),
        (APIStatusError("response_format is unsupported", status_code=422), True),
        (BadRequestError("Invalid schema", status_code=400), False),
        (AuthenticationError("bad key", status_code=401), False),
        (PermissionDeniedError("flagged", status_code=403), False),
    ],
)
def test_falls_over(error_: Exception, expected: bool) -> None:
    assert falls_over(error_) is expected  # type: ignore[arg-type]


def test_a_fallback_needs_two_models_and_takes_strings() -> None:
    from agentloop import UsageError

    with pytest.raises(UsageError, match="at least two"):
        FallbackModel("openai:gpt-4o-mini")
    both = FallbackModel("openai:gpt-4o-mini", "openrouter:openai/gpt-4o-mini")
    assert [m.system for m in both.models] == ["openai", "openrouter"]
    assert both.name == "gpt-4o-mini" and both.profile is both.models[0].profile
    keyed = FallbackModel(
        OpenAICompatible("a", base_url="http://127.0.0.1:9/v1", api_key="sk-first-secret-1"),
        OpenAICompatible("b", base_url="http://127.0.0.1:9/v1", api_key="sk-second-secret-2"),
    )
    assert "'a'" in repr(keyed) and "'b'" in repr(keyed)  # each model is named
    assert "secret" not in repr(keyed)  # and no key shows


def test_for_step_swaps_only_the_output_instructions() -> None:
    from agentloop._loop.lanes import _instructions  # pyright: ignore[reportPrivateUsage]

    messages = [SystemMessage("Be brief.\n\nOLD"), UserMessage("hi")]
    swapped = _instructions(messages, "OLD", "NEW")
    assert swapped[0] == SystemMessage("Be brief.\n\nNEW") and swapped[1] is messages[1]
    assert _instructions(messages, "OLD", None)[0] == SystemMessage("Be brief.")
    assert _instructions([UserMessage("hi")], None, "NEW")[0] == SystemMessage("NEW")
    only = _instructions([SystemMessage("OLD"), UserMessage("hi")], "OLD", None)
    assert only == [UserMessage("hi")]


@pytest.mark.anyio
async def test_usage_by_model_survives_a_pause_for_approval(
    server: LocalServer, second: LocalServer
) -> None:
    @tool(requires_approval=True)
    def refund(order: str) -> str:
        """Refund an order."""
        return f"refunded {order}"

    server.script(error(503, "down"), completion("refunded", prompt=50, completion_=5))
    second.script(completion(None, calls=[("refund", {"order": "A1"})]))
    fallback = FallbackModel(model(PRIMARY, server), model(SECOND, second))
    agent = Agent(fallback, tools=[refund], approver="defer")
    paused = await agent.run("refund A1")
    assert paused.cost_by_model == {SECOND: pytest.approx(1_200 / 1e6)}
    result = await agent.resume(paused.state_json(), {paused.pending_approvals[0].id: True})
    assert result.output == "refunded"
    assert result.cost_by_model == {
        SECOND: pytest.approx(1_200 / 1e6),
        PRIMARY: pytest.approx(60 / 1e6),
    }
    assert result.usage_by_model[SECOND].requests == 1
