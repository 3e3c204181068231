"""The context-window estimate counts the tool prompt a server's chat template adds."""

from __future__ import annotations

import dataclasses

import pytest

from agentloop import (
    LLAMA_CPP_PROFILE,
    ContextWindowError,
    ModelInfo,
    ModelProfile,
    ModelSettings,
    register_model,
    tool,
)
from agentloop._loop.window import Window
from agentloop._messages import ModelRequest, UserMessage
from agentloop._wire.request_tokens import counter_for
from agentloop.testing import FakeServer

pytestmark = pytest.mark.anyio


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return city


def fitted(profile: ModelProfile, context: int) -> tuple[ModelRequest, Window]:
    """Fit a one-message request with one tool into `context` tokens, without a policy."""
    name = f"tiny-{context}-{profile.tool_prompt_tokens}"
    register_model(ModelInfo(name, context=context, max_output=10))
    model = FakeServer([], model_name=name).model(profile)
    request = ModelRequest(
        (UserMessage("What is the weather in Oslo?"),),
        (get_weather.definition(None),),
        ModelSettings(max_completion_tokens=10),
    )
    return request, Window(model, None, counter_for(model))


async def test_the_tool_prompt_of_the_server_is_counted() -> None:
    plain = dataclasses.replace(LLAMA_CPP_PROFILE, tool_prompt_tokens=0, tokens_per_tool=0)
    request, window = fitted(plain, 150)
    assert await window.fit(request) is request  # the JSON of one tool fits in 150 tokens
    request, window = fitted(LLAMA_CPP_PROFILE, 150)
    with pytest.raises(ContextWindowError):  # with the 170 tokens its template adds, it cannot
        await window.fit(request)
