"""OpenAI and OpenRouter: environment variables, headers, body extras, keys."""

from __future__ import annotations

import json

import pytest
from support.recording_client import REQUEST, Recorder

from agentloop._errors import MissingAPIKeyError
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import DEFAULT_PROFILE, OPENAI_PROFILE, OPENROUTER_PROFILE
from agentloop._wire.providers import OpenAI, OpenRouter


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
