"""The providers' own classes (`agentloop._wire.hosted`): model strings, base URLs, key variables,
key headers, the bodies their profiles build, cached tokens, and their recorded real answers
(tests/fixtures/provider_recordings) replayed through the real parsers. Expected values are read
from the recordings with plain Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from support.recording_client import REQUEST, Recorder

from agentloop import Agent, ModelSettings, tool
from agentloop._errors import (
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    UsageError,
)
from agentloop._messages import ModelRequest, ResponseFormat, ToolDefinition, UserMessage
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.hosted import (
    VLLM,
    Anthropic,
    Azure,
    DeepSeek,
    Fireworks,
    Gemini,
    Groq,
    LMStudio,
    Mistral,
    Ollama,
    Together,
)
from agentloop._wire.models import infer_model
from agentloop._wire.profiles import (
    ANTHROPIC_PROFILE,
    DEEPSEEK_PROFILE,
    GEMINI_PROFILE,
    GROQ_PROFILE,
    MISTRAL_PROFILE,
    OLLAMA_PROFILE,
    OPENAI_PROFILE,
    ModelProfile,
)
from agentloop._wire.providers import OpenRouter
from agentloop._wire.request import build_body
from agentloop.testing import FakeServer, Reply, reply, tool_call

RECORDINGS = Path(__file__).parents[1] / "fixtures" / "provider_recordings"
SECRET = "sk-SECRET-4242"

HOSTED: list[tuple[str, type[OpenAICompatible], str, str, ModelProfile | None]] = [
    (
        "anthropic",
        Anthropic,
        "https://api.anthropic.com/v1",
        "ANTHROPIC_API_KEY",
        ANTHROPIC_PROFILE,
    ),
    (
        "gemini",
        Gemini,
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "GEMINI_API_KEY",
        GEMINI_PROFILE,
    ),
    ("groq", Groq, "https://api.groq.com/openai/v1", "GROQ_API_KEY", GROQ_PROFILE),
    ("mistral", Mistral, "https://api.mistral.ai/v1", "MISTRAL_API_KEY", MISTRAL_PROFILE),
    ("deepseek", DeepSeek, "https://api.deepseek.com", "DEEPSEEK_API_KEY", DEEPSEEK_PROFILE),
    ("together", Together, "https://api.together.ai/v1", "TOGETHER_API_KEY", None),
    ("fireworks", Fireworks, "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", None),
]
LOCAL: list[tuple[str, type[OpenAICompatible], str]] = [
    ("ollama", Ollama, "http://127.0.0.1:11434/v1"),
    ("vllm", VLLM, "http://127.0.0.1:8000/v1"),
    ("lmstudio", LMStudio, "http://127.0.0.1:1234/v1"),
]
VARIABLES = [
    *(row[3] for row in HOSTED),
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OLLAMA_HOST",
    "VLLM_API_KEY",
]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / name).read_text(encoding="utf-8"))


def serve(record: dict[str, Any], sent: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose every request gets the recorded answer, byte for byte where kept."""
    response = record["response"]
    headers = {"content-type": response["headers"].get("content-type", "application/json")}
    if "raw_sse" in response:
        content = response["raw_sse"].encode()
    elif "raw_body" in response:
        content = response["raw_body"].encode()
    else:
        content = json.dumps(response["body"]).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(response["status"], content=content, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def recorded_usage(record: dict[str, Any]) -> dict[str, Any]:
    response = record["response"]
    if "sse_events" not in response:
        return response["body"]["usage"]
    chunks = [json.loads(e) for e in response["sse_events"] if e.strip() != "[DONE]"]
    return next(c["usage"] for c in reversed(chunks) if c.get("usage"))


def recorded_cached(usage: dict[str, Any]) -> int:
    """The cache hits each provider documents: OpenAI-style details, Together's top-level
    ``cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``."""
    details = usage.get("prompt_tokens_details") or {}
    return (
        details.get("cached_tokens")
        or usage.get("cached_tokens")
        or usage.get("prompt_cache_hit_tokens")
        or 0
    )


def recorded_text(record: dict[str, Any]) -> str:
    response = record["response"]
    if "sse_events" not in response:
        return response["body"]["choices"][0]["message"].get("content") or ""
    text = ""
    for event in response["sse_events"]:
        if event.strip() == "[DONE]":
            continue
        for choice in json.loads(event).get("choices") or []:
            content = choice["delta"].get("content")
            if isinstance(content, str):
                text += content
            elif isinstance(content, list):
                text += "".join(p["text"] for p in content if p.get("type") == "text")
    return text


# ---- model strings, base URLs, keys -------------------------------------------------------


@pytest.mark.parametrize(("prefix", "cls", "url", "variable", "profile"), HOSTED)
def test_model_string_builds_the_hosted_class(prefix, cls, url, variable, profile):
    model = infer_model(f"{prefix}:vendor/some-model:latest")
    assert type(model) is cls and isinstance(model, OpenAICompatible)
    assert isinstance(model, cls)
    assert model.name == "vendor/some-model:latest"  # only the first colon splits
    assert model.system == prefix
    assert model.base_url == url
    assert model._api_key_env == variable
    if profile is None:
        assert model.learns  # what it accepts depends on the model served
    else:
        assert model.profile is profile and not model.learns


@pytest.mark.parametrize(("prefix", "cls", "url"), LOCAL)
def test_model_string_builds_the_local_class(prefix, cls, url):
    model = infer_model(f"{prefix}:qwen2.5:7b")
    assert type(model) is cls and isinstance(model, OpenAICompatible)
    assert (model.system, model.base_url, model.name) == (prefix, url, "qwen2.5:7b")
    assert model.learns and model._api_key_env is None


def test_unknown_prefix_lists_the_new_providers():
    with pytest.raises(UsageError, match="anthropic, azure, deepseek, fireworks, gemini, groq"):
        infer_model("nosuch:model")


def test_agent_takes_the_model_string():
    agent = Agent("anthropic:claude-sonnet-4-5")
    assert isinstance(agent.model, Anthropic)
    assert agent.model.profile is ANTHROPIC_PROFILE


@pytest.mark.anyio
@pytest.mark.parametrize(("prefix", "cls", "url", "variable", "profile"), HOSTED)
async def test_missing_key_names_the_variable_and_no_key_leaks(
    env, prefix, cls, url, variable, profile
):
    recorder = Recorder()
    model = cls("m", http_client=recorder.client())  # no error before the first request
    with pytest.raises(MissingAPIKeyError, match=variable) as raised:
        await model.request(REQUEST)
    assert prefix in str(raised.value)
    assert recorder.requests == []
    env.setenv(variable, SECRET)
    await model.request(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == f"{url}/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(model)


@pytest.mark.anyio
@pytest.mark.parametrize(("prefix", "cls", "url"), LOCAL)
async def test_local_servers_need_no_key(prefix, cls, url):
    recorder = Recorder()
    await cls("m", http_client=recorder.client()).request(REQUEST)
    assert str(recorder.requests[0].url) == f"{url}/chat/completions"
    assert "authorization" not in recorder.requests[0].headers


@pytest.mark.anyio
async def test_vllm_sends_vllm_api_key_when_set(env):
    env.setenv("VLLM_API_KEY", SECRET)
    recorder = Recorder()
    model = VLLM("m", http_client=recorder.client())
    await model.request(REQUEST)
    assert recorder.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(model)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("gpu-box:11500", "http://gpu-box:11500/v1"),
        ("0.0.0.0", "http://127.0.0.1:11434/v1"),
        ("https://ollama.internal", "https://ollama.internal:11434/v1"),
        ("http://[::1]:9999/", "http://[::1]:9999/v1"),
    ],
)
def test_ollama_reads_ollama_host(env, host, url):
    env.setenv("OLLAMA_HOST", host)
    assert Ollama("m").base_url == url
    assert Ollama("m", base_url="http://other:1/v1").base_url == "http://other:1/v1"


def test_callers_options_win(env):
    model = Groq("m", base_url="http://proxy.local/v1", profile=OLLAMA_PROFILE)
    assert model.base_url == "http://proxy.local/v1" and model.profile is OLLAMA_PROFILE
    assert Together("m", profile=GROQ_PROFILE).profile is GROQ_PROFILE


# ---- Azure ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_azure_v1_endpoint_and_api_key_header(env):
    env.setenv("AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com/")
    recorder = Recorder()
    model = infer_model("azure:my-gpt-4o-deployment")
    assert isinstance(model, Azure) and model.system == "azure"
    assert model.profile is OPENAI_PROFILE
    model = Azure("my-gpt-4o-deployment", http_client=recorder.client())
    with pytest.raises(MissingAPIKeyError, match="AZURE_OPENAI_API_KEY"):
        await model.request(REQUEST)
    env.setenv("AZURE_OPENAI_API_KEY", SECRET)
    await model.request(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == "https://my-resource.openai.azure.com/openai/v1/chat/completions"
    assert sent.headers["api-key"] == SECRET
    assert "authorization" not in sent.headers
    assert json.loads(sent.content)["model"] == "my-gpt-4o-deployment"


@pytest.mark.anyio
async def test_azure_deployment_url_with_api_version(env):
    env.setenv("AZURE_OPENAI_API_KEY", "k")
    recorder = Recorder()
    model = Azure(
        "gpt-4o",
        base_url="https://r.openai.azure.com/openai/deployments/gpt-4o",
        api_version="2024-10-21",
        http_client=recorder.client(),
    )
    await model.request(REQUEST)
    assert str(recorder.requests[0].url) == (
        "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21"
    )
    endpoint = Azure("d", endpoint="https://r.openai.azure.com/openai/v1/")
    assert endpoint.base_url == "https://r.openai.azure.com/openai/v1"


def test_azure_without_endpoint_names_the_variable():
    with pytest.raises(UsageError, match="AZURE_OPENAI_ENDPOINT"):
        infer_model("azure:gpt-4o")


# ---- the bodies the profiles build ---------------------------------------------------------


class City(BaseModel):
    name: str
    population: int


@tool
def lookup(city: str) -> str:
    """Facts about a city."""
    return f"{city}: 2.1 million people"


def agent_for(cls: Any, server: FakeServer, **options: Any) -> Agent[Any]:
    client = httpx.AsyncClient(transport=server.transport)
    return Agent(
        cls("m", api_key=SECRET, http_client=client),
        tools=[lookup],
        output_type=City,
        settings=ModelSettings(max_completion_tokens=300, tool_choice="required"),
        **options,
    )


def strict_anywhere(body: dict[str, Any]) -> bool:
    return "strict" in json.dumps({k: v for k, v in body.items() if k != "messages"})


@pytest.mark.anyio
async def test_anthropic_never_relies_on_strict_or_response_format():
    """The endpoint ignores both: the output comes through the final-result tool, and an
    invalid one is refused here and asked again."""
    server = FakeServer(
        [
            tool_call(("lookup", {"city": "Paris"})),
            tool_call(("final_result", {"name": "Paris", "population": "many"})),
            tool_call(("final_result", {"name": "Paris", "population": 2100000})),
        ]
    )
    result = await agent_for(Anthropic, server).run("Population of Paris?")
    assert result.output == City(name="Paris", population=2100000)
    assert len(server.requests) == 3
    for body in server.requests:
        assert "response_format" not in body
        assert not strict_anywhere(body)
        assert "final_result" in [t["function"]["name"] for t in body["tools"]]
    assert server.requests[0]["tool_choice"] == "required"
    assert "population" in json.dumps(server.requests[2]["messages"][-1])  # the re-ask


def test_anthropic_body_drops_strict_and_response_format_even_when_asked():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    request = ModelRequest(
        (UserMessage("hi"),),
        tools=(ToolDefinition("f", "A tool.", schema, strict=True),),
        response_format=ResponseFormat("out", schema, True),
    )
    body = build_body("claude", ANTHROPIC_PROFILE, request, stream=True)
    assert "response_format" not in body and not strict_anywhere(body)
    assert body["stream_options"] == {"include_usage": True}  # documented as supported
    openai = build_body("gpt", OPENAI_PROFILE, request, stream=True)
    assert "response_format" in openai and strict_anywhere(openai)  # the same request elsewhere


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cls", "output_field", "cap"),
    [
        (Gemini, "json_schema", "max_tokens"),
        (Mistral, "json_schema", "max_tokens"),
        (Groq, None, "max_completion_tokens"),
        (DeepSeek, None, "max_tokens"),
    ],
)
async def test_profile_shapes_the_body(cls, output_field, cap):
    server = FakeServer([reply({"name": "Oslo", "population": 700000})])
    if output_field is None:  # structured output through the final-result tool
        server = FakeServer([tool_call(("final_result", {"name": "Oslo", "population": 700000}))])
    result = await agent_for(cls, server).run("Population of Oslo?")
    assert result.output == City(name="Oslo", population=700000)
    body = server.requests[0]
    assert body[cap] == 300
    assert not strict_anywhere(body)
    names = [t["function"]["name"] for t in body["tools"]]
    if output_field is None:
        assert "response_format" not in body and "final_result" in names
    else:
        assert body["response_format"]["type"] == output_field and names == ["lookup"]
    assert body["tool_choice"] == "required"


@pytest.mark.anyio
async def test_mistral_streams_without_stream_options_and_still_counts():
    record = load("pydantic-ai__test_mistral__test_mistral_model_thinking_part_iter.json")
    sent: list[httpx.Request] = []
    model = Mistral("magistral-medium-latest", api_key=SECRET, http_client=serve(record, sent))
    async with model.stream(REQUEST) as stream:
        async for _ in stream:
            pass
    body = json.loads(sent[0].content)
    assert body["stream"] is True and "stream_options" not in body
    usage = recorded_usage(record)
    assert stream.response.usage.input_tokens == usage["prompt_tokens"]
    assert stream.response.usage.output_tokens == usage["completion_tokens"]
    assert stream.response.message.content == recorded_text(record)


# ---- recorded answers through each provider's class ----------------------------------------

ANSWERS = [
    (
        Anthropic,
        "mirascope__test_call_non_openai_models_through_openai__anthropic_claude_sonnet_4_5.json",
    ),
    (Gemini, "pydantic-ai__test_openai__test_compatible_api_with_tool_calls_without_id__0.json"),
    (Gemini, "pydantic-ai__test_openai__test_compatible_api_with_tool_calls_without_id__1.json"),
    (Groq, "pydantic-ai__test_groq__test_groq_native_output.json"),
    (Groq, "pydantic-ai__test_groq__test_tool_use_failed_error__2.json"),
    (Groq, "pydantic-ai__test_tool_choice_matrix__test_tool_choice_matrix_required-groq.json"),
    (Mistral, "pydantic-ai__test_mistral__test_mistral_history_uses_prompt_cache__1.json"),
    (
        Mistral,
        "pydantic-ai__test_tool_choice_matrix__test_tool_choice_matrix_required-mistral.json",
    ),
    (
        DeepSeek,
        "pydantic-ai__test_deepseek__test_deepseek_deferred_capability_with_thinking__0.json",
    ),
    (Together, "mirascope__test_together_provider__meta_llama_Llama_3_3_70B_Instruct_Turbo.json"),
    (Ollama, "mirascope__test_ollama_provider__ollama_gemma3_4b.json"),
    (Ollama, "pydantic-ai__test_ollama__test_ollama_local_native_output_uses_json_schema.json"),
    (Azure, "pydantic-ai__test_azure__test_azure_provider_call.json"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("cls", "name"), ANSWERS, ids=[n for _, n in ANSWERS])
async def test_recorded_answer(cls, name):
    record = load(name)
    sent: list[httpx.Request] = []
    client = serve(record, sent)
    if cls is Azure:
        model = cls(
            "gpt-4o", endpoint="https://r.openai.azure.com", api_key=SECRET, http_client=client
        )
    else:
        model = cls(record["request"]["body"]["model"], api_key=SECRET, http_client=client)
    response = await model.request(REQUEST)
    assert len(sent) == 1
    message = record["response"]["body"]["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    assert [c.name for c in response.message.tool_calls] == [c["function"]["name"] for c in calls]
    assert all(c.id for c in response.message.tool_calls)  # Gemini sends none: made up
    if not calls:
        content = message.get("content")
        text = content if isinstance(content, str) else recorded_text(record)
        assert (response.message.content or "") in text
        assert response.message.content
    usage = recorded_usage(record)
    assert response.usage.input_tokens == usage["prompt_tokens"]
    assert response.usage.output_tokens == usage["completion_tokens"]
    assert response.usage.cached_tokens == recorded_cached(usage)


def test_recordings_hold_cache_hits():
    """The cached-token cases above are not all zeros (each provider's own field is read)."""
    hits = {
        name: recorded_cached(recorded_usage(load(name)))
        for name in (
            "pydantic-ai__test_groq__test_tool_use_failed_error__2.json",
            "pydantic-ai__test_mistral__test_mistral_history_uses_prompt_cache__1.json",
            "pydantic-ai__test_deepseek__test_deepseek_deferred_capability_with_thinking__0.json",
        )
    }
    assert all(hits.values()), hits


@pytest.mark.anyio
async def test_mistral_num_cached_tokens_is_not_a_cache_hit():
    """Mistral's undocumented ``num_cached_tokens`` (9 of a 10-token prompt, with no
    ``prompt_cache_key``) is not billed at the cached rate, so it is not counted as cached."""
    record = load(
        "pydantic-ai__test_tool_choice_matrix__test_tool_choice_matrix_required-mistral.json"
    )
    assert record["response"]["body"]["usage"]["num_cached_tokens"] > 0
    model = Mistral("m", api_key=SECRET, http_client=serve(record, []))
    assert (await model.request(REQUEST)).usage.cached_tokens == 0


@pytest.mark.anyio
async def test_deepseek_cache_hits_in_a_stream():
    """The recorded usage of a DeepSeek answer, sent as the last chunk of a stream."""
    usage = recorded_usage(
        load("pydantic-ai__test_deepseek__test_deepseek_deferred_capability_with_thinking__0.json")
    )
    server = FakeServer([Reply(content="ok", usage=usage)])
    client = httpx.AsyncClient(transport=server.transport)
    model = DeepSeek("deepseek-chat", api_key=SECRET, http_client=client)
    async with model.stream(REQUEST) as stream:
        async for _ in stream:
            pass
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert stream.response.usage.cached_tokens == usage["prompt_cache_hit_tokens"] > 0
    assert stream.response.usage.input_tokens == usage["prompt_tokens"]


@pytest.mark.anyio
async def test_groq_tool_use_failed_is_the_models_failure_not_a_lesson():
    """Groq answers 400 ``tool_use_failed`` when a forced call is not made; with Groq's profile
    it is raised as it is, and the next request still forces the call."""
    record = load("pydantic-ai__test_groq__test_tool_use_failed_error_with_text__0.json")
    sent: list[httpx.Request] = []
    model = Groq("m", api_key=SECRET, http_client=serve(record, sent), max_retries=0)
    with pytest.raises(BadRequestError, match="Tool choice is required") as raised:
        await model.request(REQUEST)
    assert len(sent) == 1 and model.profile is GROQ_PROFILE
    assert SECRET not in str(raised.value)


@pytest.mark.anyio
async def test_together_bad_key_is_an_authentication_error():
    record = load("mirascope-ts__openai-compatibility__makes-successful-api-call.json")
    sent: list[httpx.Request] = []
    model = Together("m", api_key=SECRET, http_client=serve(record, sent), max_retries=0)
    with pytest.raises(AuthenticationError, match="Invalid API key") as raised:
        await model.request(REQUEST)
    assert len(sent) == 1
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)


# ---- prompt caching: cache_control reaches the body ----------------------------------------

CACHED_PART = {
    "type": "text",
    "text": "A long document. " * 50,
    "cache_control": {"type": "ephemeral"},
}


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "make",
    [
        lambda client: OpenRouter(
            "anthropic/claude-sonnet-4.5", api_key=SECRET, http_client=client
        ),
        lambda client: Anthropic("claude-sonnet-4-5", api_key=SECRET, http_client=client),
        lambda client: Gemini("gemini-2.5-flash", api_key=SECRET, http_client=client),
    ],
    ids=["openrouter", "anthropic", "gemini"],
)
async def test_cache_control_parts_reach_the_body_unchanged(make, stream):
    server = FakeServer([reply("ok")])
    agent = Agent(make(httpx.AsyncClient(transport=server.transport)), instructions="Be brief.")
    question = {"type": "text", "text": "What is it about?"}
    prompt = [{"role": "user", "content": [CACHED_PART, question]}]
    if stream:
        async with agent.run_stream(prompt) as run:
            async for _ in run:
                pass
    else:
        await agent.run(prompt)
    user = server.requests[0]["messages"][-1]
    assert user == {"role": "user", "content": [CACHED_PART, question]}


@pytest.mark.anyio
async def test_cache_control_where_it_would_be_lost_is_refused():
    agent = Agent(FakeServer([]).model())
    prompt = [{"role": "system", "content": [CACHED_PART]}, {"role": "user", "content": "hi"}]
    with pytest.raises(UsageError, match="cannot send 'cache_control'"):
        await agent.run(prompt)
