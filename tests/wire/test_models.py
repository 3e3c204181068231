"""Model strings and model objects given to `infer_model`."""

from __future__ import annotations

import pytest

from agentloop._errors import UsageError
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.models import infer_model
from agentloop._wire.providers import OpenAI, OpenRouter


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


@pytest.mark.parametrize("text", ["nosuch:claude", "gpt-4o", "openai:", ":gpt"])
def test_bad_model_strings(text):
    with pytest.raises(UsageError, match="openai, openrouter"):
        infer_model(text)


def test_model_objects_pass_through_infer_model():
    model = OpenAICompatible("x", base_url="http://h/v1")
    assert infer_model(model) is model
