"""`OpenAI` and `OpenRouter`: `OpenAICompatible` with a provider's base URL, key variable,
headers and body extras, and `PROVIDERS`, the classes a model string's prefix names (the other
providers' classes are in `hosted`).

Each takes every `ClientOptions` option, as `OpenAICompatible` does; what it adds to `headers`,
`extra_body` and `profile` gives way to what the caller passes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

from .compatible import OpenAICompatible
from .hosted import (
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
from .options import ClientOptions
from .profiles import OPENAI_PROFILE, OPENROUTER_PROFILE

__all__ = ["PROVIDERS", "OpenAI", "OpenRouter"]


class OpenAI(OpenAICompatible):
    """OpenAI's API. Key from ``OPENAI_API_KEY``; base URL ``OPENAI_BASE_URL`` or the official
    one; ``OpenAI-Organization`` / ``OpenAI-Project`` from the arguments or ``OPENAI_ORG_ID`` /
    ``OPENAI_PROJECT_ID``."""

    system: str = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        own: dict[str, str] = {}
        if organization:
            own["OpenAI-Organization"] = organization
        if project:
            own["OpenAI-Project"] = project
        options["headers"] = {**own, **(options.get("headers") or {})}
        options["profile"] = options.get("profile") or OPENAI_PROFILE
        super().__init__(
            model,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            **options,
        )


class OpenRouter(OpenAICompatible):
    """OpenRouter. Key from ``OPENROUTER_API_KEY``; base URL ``OPENROUTER_BASE_URL`` or the
    official one.

    `app_url` / `app_title` are sent as ``HTTP-Referer`` / ``X-Title``; `provider` (routing),
    `models` (fallbacks) and `reasoning` go into the body, and ``usage: {"include": true}`` so the
    answer reports its cost (set `include_usage=False` to leave it out).
    """

    system: str = "openrouter"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        app_url: str | None = None,
        app_title: str | None = None,
        provider: Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        include_usage: bool = True,
        **options: Unpack[ClientOptions],
    ) -> None:
        own: dict[str, str] = {}
        if app_url:
            own["HTTP-Referer"] = app_url
        if app_title:
            own["X-Title"] = app_title
        body: dict[str, Any] = {}
        if provider:
            body["provider"] = dict(provider)
        if models:
            body["models"] = list(models)
        if reasoning:
            body["reasoning"] = dict(reasoning)
        if include_usage:
            body["usage"] = {"include": True}
        options["headers"] = {**own, **(options.get("headers") or {})}
        options["extra_body"] = {**body, **(options.get("extra_body") or {})}
        options["profile"] = options.get("profile") or OPENROUTER_PROFILE
        super().__init__(
            model,
            base_url=base_url
            or os.environ.get("OPENROUTER_BASE_URL")
            or "https://openrouter.ai/api/v1",
            api_key_env="OPENROUTER_API_KEY",
            **options,
        )


PROVIDERS: dict[str, Callable[[str], OpenAICompatible]] = {
    "openai": OpenAI,
    "openrouter": OpenRouter,
    "anthropic": Anthropic,
    "gemini": Gemini,
    "groq": Groq,
    "mistral": Mistral,
    "deepseek": DeepSeek,
    "together": Together,
    "fireworks": Fireworks,
    "azure": Azure,
    "ollama": Ollama,
    "vllm": VLLM,
    "lmstudio": LMStudio,
}
"""The model class of each provider prefix of a model string (``"openai:gpt-4o"``)."""
