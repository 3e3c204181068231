"""Model classes: env vars, base URLs, headers, model strings, keys, and the httpx client's life."""

from __future__ import annotations

import gc
import json

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from agentloop._errors import MissingAPIKeyError, UsageError
from agentloop._messages import ModelRequest, UserMessage
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.models import infer_model
from agentloop._wire.profiles import (
    DEFAULT_PROFILE,
    OPENAI_PROFILE,
    OPENROUTER_PROFILE,
    OPTIMISTIC_PROFILE,
)
from agentloop._wire.providers import OpenAI, OpenRouter

OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.25},
}
REQUEST = ModelRequest((UserMessage("hello"),))


class Recorder:
    def __init__(self, body=None):
        self.requests: list[httpx.Request] = []
        self.body = body or OK

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture
def env(monkeypatch):
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.anyio
async def test_openai_defaults_from_environment(env):
    env.setenv("OPENAI_API_KEY", "sk-env-SECRET")
    env.setenv("OPENAI_ORG_ID", "org-1")
    env.setenv("OPENAI_PROJECT_ID", "proj-1")
    recorder = Recorder()
    model = OpenAI("gpt-4o-mini", http_client=recorder.client())
    assert model.profile is OPENAI_PROFILE
    assert model.system == "openai"
    await model.request(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-env-SECRET"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["openai-project"] == "proj-1"
    assert json.loads(sent.content)["model"] == "gpt-4o-mini"


@pytest.mark.anyio
async def test_openai_arguments_win_over_environment(env):
    env.setenv("OPENAI_API_KEY", "sk-env")
    env.setenv("OPENAI_BASE_URL", "http://proxy.local/v1/")
    env.setenv("OPENAI_ORG_ID", "org-env")
    recorder = Recorder()
    model = OpenAI(
        "m", api_key="sk-arg", organization="org-arg", project="p", http_client=recorder.client()
    )
    await model.request(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == "http://proxy.local/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-arg"
    assert sent.headers["openai-organization"] == "org-arg"
    assert sent.headers["openai-project"] == "p"


@pytest.mark.anyio
async def test_openrouter_headers_and_body_extras(env):
    env.setenv("OPENROUTER_API_KEY", "sk-or-SECRET")
    recorder = Recorder()
    model = OpenRouter(
        "openai/gpt-4o-mini",
        app_url="https://example.invalid/app",
        app_title="My App",
        provider={"order": ["openai"], "allow_fallbacks": False},
        models=["openai/gpt-4o-mini", "mistralai/mistral-small"],
        reasoning={"effort": "low"},
        http_client=recorder.client(),
    )
    assert model.profile is OPENROUTER_PROFILE
    assert model.system == "openrouter"
    response = await model.request(REQUEST)
    assert response.usage.cost == 0.25
    sent = recorder.requests[0]
    assert str(sent.url) == "https://openrouter.ai/api/v1/chat/completions"
    assert sent.headers["http-referer"] == "https://example.invalid/app"
    assert sent.headers["x-title"] == "My App"
    body = json.loads(sent.content)
    assert body["provider"] == {"order": ["openai"], "allow_fallbacks": False}
    assert body["models"] == ["openai/gpt-4o-mini", "mistralai/mistral-small"]
    assert body["reasoning"] == {"effort": "low"}
    assert body["usage"] == {"include": True}


@pytest.mark.anyio
async def test_openrouter_base_url_from_environment_and_usage_opt_out(env):
    env.setenv("OPENROUTER_BASE_URL", "http://router.local/api/v1")
    recorder = Recorder()
    model = OpenRouter("x/y", api_key="k", include_usage=False, http_client=recorder.client())
    await model.request(REQUEST)
    assert str(recorder.requests[0].url) == "http://router.local/api/v1/chat/completions"
    assert "usage" not in json.loads(recorder.requests[0].content)
    assert "http-referer" not in recorder.requests[0].headers


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
@pytest.mark.parametrize(
    ("factory", "variable"),
    [(lambda c: OpenAI("m", http_client=c), "OPENAI_API_KEY"),
     (lambda c: OpenRouter("m", http_client=c), "OPENROUTER_API_KEY")],
)  # fmt: skip
async def test_missing_key_fails_at_first_request_naming_the_variable(env, factory, variable):
    recorder = Recorder()
    model = factory(recorder.client())  # no error here
    with pytest.raises(MissingAPIKeyError, match=variable):
        await model.request(REQUEST)
    with pytest.raises(MissingAPIKeyError, match=variable):
        model.stream(REQUEST)
    assert recorder.requests == []
    env.setenv(variable, "late-key")  # set after construction: picked up
    await model.request(REQUEST)
    assert recorder.requests[0].headers["authorization"] == "Bearer late-key"


def test_repr_shows_no_key(env):
    env.setenv("OPENAI_API_KEY", "sk-env-SECRET")
    model = OpenAI("gpt-4o", api_key="sk-arg-SECRET")
    text = repr(model)
    assert (
        text
        == "OpenAI(model='gpt-4o', base_url='https://api.openai.com/v1', profile=OPENAI_PROFILE)"
    )
    custom = OpenAICompatible(
        "x",
        base_url="http://h/v1",
        api_key="SECRET",
        profile=DEFAULT_PROFILE.replace(strict_tools=True),
    )
    assert "SECRET" not in repr(custom)
    assert "profile=custom" in repr(custom)
    assert "SECRET" not in str(vars(model).get("name"))


@pytest.mark.parametrize(
    ("text", "cls", "name"),
    [
        ("openai:gpt-4o-mini", OpenAI, "gpt-4o-mini"),
        ("openrouter:openai/gpt-3.5-turbo-0613", OpenRouter, "openai/gpt-3.5-turbo-0613"),
        (
            "openrouter:meta-llama/llama-3.1-8b-instruct:free",
            OpenRouter,
            "meta-llama/llama-3.1-8b-instruct:free",
        ),
    ],
)
def test_model_strings(text, cls, name):
    model = infer_model(text)
    assert type(model) is cls
    assert model.name == name


@pytest.mark.parametrize("text", ["anthropic:claude", "gpt-4o", "openai:", ":gpt"])
def test_bad_model_strings(text):
    with pytest.raises(UsageError, match="openai, openrouter"):
        infer_model(text)


def test_model_objects_pass_through_infer_model():
    model = OpenAICompatible("x", base_url="http://h/v1")
    assert infer_model(model) is model


@pytest.mark.parametrize("base_url", ["ftp://h/v1", "not a url", "/v1", ""])
def test_bad_base_url(base_url):
    with pytest.raises(UsageError, match="base_url"):
        OpenAICompatible("x", base_url=base_url)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_bad_timeout(timeout):
    with pytest.raises(UsageError, match="timeout"):
        OpenAICompatible("x", base_url="http://h/v1", timeout=timeout)


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
    client = model._endpoint.pool.get()
    assert model._endpoint.pool.get() is client
    await model.aclose()
    assert client.is_closed
    assert model._endpoint.pool.get() is not client
    await model.aclose()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_one_model_across_two_event_loops(backend):
    """`run_sync` starts a new loop each time: the model's own client must follow."""
    from support.local_server import LocalServer, Reply

    with LocalServer() as server:
        server.script(Reply(200, json_body=OK), Reply(200, json_body=OK))
        model = OpenAICompatible("x", base_url=server.base_url)
        clients = []

        async def once():
            clients.append(model._endpoint.pool.get())
            return await model.request(REQUEST)

        first = anyio.run(once, backend=backend)
        second = anyio.run(once, backend=backend)
        assert first.message.content == second.message.content == "hi"
        assert clients[0] is not clients[1]
        assert len(server.requests) == 2
    gc.collect()


def test_one_model_across_backends():
    from support.local_server import LocalServer, Reply

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
    from support.local_server import LocalServer, Reply

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
        slots = model._endpoint.pool.slots()  # the owned client's connection slots
        assert slots is not None and slots.total_tokens == 3
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
    from agentloop import ClientOptions, RetryPolicy
    from agentloop._settings import ModelSettings

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
        assert model._endpoint.params == {"q": "1"}
        assert model._endpoint.policy.max_retries == 4


@pytest.mark.parametrize(
    "build",
    [lambda: OpenAI("m", max_conections=2),  # pyright: ignore[reportCallIssue]
     lambda: OpenRouter("m", max_conections=2),  # pyright: ignore[reportCallIssue]
     lambda: OpenAICompatible("m", base_url="http://h/v1", max_conections=2)],  # pyright: ignore[reportCallIssue]
)  # fmt: skip
def test_a_misspelt_option_is_a_type_error(build):
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_conections'"):
        build()
