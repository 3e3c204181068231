"""The compatible endpoints of the major providers, one small class each: a base URL, the
provider's usual key variable, and a profile where the provider documents what it accepts.

Anthropic, Gemini, Groq, Mistral, DeepSeek, Together, Fireworks and Azure are hosted and keyed;
Ollama, vLLM and LM Studio run on this machine and need no key. Each class takes every
`ClientOptions` option, and what the caller passes (``base_url``, ``profile``, ``headers``...)
wins over the class's defaults. A class without a profile (Together, Fireworks and the local
servers, whose features depend on the model served or the server's version and flags) starts
optimistic and learns from the server's answers, as `OpenAICompatible` does.
"""

from __future__ import annotations

import os
from typing import ClassVar, Unpack
from urllib.parse import urlsplit

from .._errors import UsageError
from .compatible import OpenAICompatible
from .options import ClientOptions
from .profiles import (
    ANTHROPIC_PROFILE,
    DEEPSEEK_PROFILE,
    GEMINI_PROFILE,
    GROQ_PROFILE,
    MISTRAL_PROFILE,
    OPENAI_PROFILE,
    ModelProfile,
)

__all__ = [
    "VLLM",
    "Anthropic",
    "Azure",
    "DeepSeek",
    "Fireworks",
    "Gemini",
    "Groq",
    "LMStudio",
    "Mistral",
    "Ollama",
    "Together",
]


class _Provider(OpenAICompatible):
    """A provider's endpoint: `_default_base_url` unless ``base_url`` says otherwise, the key
    from `_key_env` (None: no key is needed) sent in `_key_header`, and `_default_profile` unless
    the caller passes one (None: the model learns)."""

    _default_base_url: ClassVar[str]
    _key_env: ClassVar[str | None] = None
    _key_header: ClassVar[str] = "Authorization"
    _default_profile: ClassVar[ModelProfile | None] = None

    def __init__(
        self, model: str, *, base_url: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        options["profile"] = options.get("profile") or self._default_profile
        super().__init__(
            model,
            base_url=base_url or self._default_base_url,
            api_key_header=self._key_header,
            api_key_env=self._key_env,
            **options,
        )


class Anthropic(_Provider):
    """Claude through Anthropic's OpenAI-compatible endpoint. Key from ``ANTHROPIC_API_KEY``.

    The endpoint ignores ``strict`` and ``response_format``, so `ANTHROPIC_PROFILE` sends neither
    and gets structured output through the final-result tool, validated (and asked again) here.
    """

    system: str = "anthropic"
    _default_base_url = "https://api.anthropic.com/v1"
    _key_env = "ANTHROPIC_API_KEY"
    _default_profile = ANTHROPIC_PROFILE


class Gemini(_Provider):
    """Gemini through Google's OpenAI-compatible endpoint. Key from ``GEMINI_API_KEY``."""

    system: str = "gemini"
    _default_base_url = "https://generativelanguage.googleapis.com/v1beta/openai"
    _key_env = "GEMINI_API_KEY"
    _default_profile = GEMINI_PROFILE


class Groq(_Provider):
    """Groq. Key from ``GROQ_API_KEY``."""

    system: str = "groq"
    _default_base_url = "https://api.groq.com/openai/v1"
    _key_env = "GROQ_API_KEY"
    _default_profile = GROQ_PROFILE


class Mistral(_Provider):
    """Mistral's API. Key from ``MISTRAL_API_KEY``."""

    system: str = "mistral"
    _default_base_url = "https://api.mistral.ai/v1"
    _key_env = "MISTRAL_API_KEY"
    _default_profile = MISTRAL_PROFILE


class DeepSeek(_Provider):
    """DeepSeek's API. Key from ``DEEPSEEK_API_KEY``."""

    system: str = "deepseek"
    _default_base_url = "https://api.deepseek.com"
    _key_env = "DEEPSEEK_API_KEY"
    _default_profile = DEEPSEEK_PROFILE


class Together(_Provider):
    """Together AI. Key from ``TOGETHER_API_KEY``. What it accepts depends on the model served,
    so the model learns it."""

    system: str = "together"
    _default_base_url = "https://api.together.ai/v1"
    _key_env = "TOGETHER_API_KEY"


class Fireworks(_Provider):
    """Fireworks AI. Key from ``FIREWORKS_API_KEY``. What it accepts depends on the model served,
    so the model learns it."""

    system: str = "fireworks"
    _default_base_url = "https://api.fireworks.ai/inference/v1"
    _key_env = "FIREWORKS_API_KEY"


class Ollama(_Provider):
    """Ollama's ``/v1`` endpoint on ``OLLAMA_HOST`` (as Ollama's own clients read it), else
    127.0.0.1:11434. No key. It learns what the server and model accept (pass
    ``profile=OLLAMA_PROFILE`` to skip that)."""

    system: str = "ollama"
    _default_base_url = "http://127.0.0.1:11434/v1"

    def __init__(
        self, model: str, *, base_url: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        host = os.environ.get("OLLAMA_HOST")
        super().__init__(model, base_url=base_url or _ollama_url(host), **options)


def _ollama_url(host: str | None) -> str | None:
    """The ``/v1`` URL of an ``OLLAMA_HOST`` value (``host``, ``host:port`` or a URL)."""
    if not host:
        return None
    url = urlsplit(host if "://" in host else f"http://{host}")
    name = url.hostname or "127.0.0.1"
    name = "127.0.0.1" if name == "0.0.0.0" else name  # a bind-all address is no destination
    name = f"[{name}]" if ":" in name else name
    return f"{url.scheme}://{name}:{url.port or 11434}{url.path.rstrip('/')}/v1"


class VLLM(_Provider):
    """vLLM's server (``vllm serve``) on 127.0.0.1:8000. A key only if ``VLLM_API_KEY`` is set
    (the variable ``vllm serve`` reads for its own). It learns what the server accepts, which
    depends on its version and flags (pass ``profile=VLLM_PROFILE`` to skip that)."""

    system: str = "vllm"
    _default_base_url = "http://127.0.0.1:8000/v1"

    def __init__(
        self, model: str, *, base_url: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        if options.get("api_key") is None:
            options["api_key"] = os.environ.get("VLLM_API_KEY") or None
        super().__init__(model, base_url=base_url, **options)


class LMStudio(_Provider):
    """LM Studio's server on 127.0.0.1:1234. No key. It learns what the server accepts (pass
    ``profile=LM_STUDIO_PROFILE`` to skip that)."""

    system: str = "lmstudio"
    _default_base_url = "http://127.0.0.1:1234/v1"


class Azure(_Provider):
    """Azure OpenAI's v1 API: ``{endpoint}/openai/v1``, the model named by its deployment.

    `endpoint` defaults to ``AZURE_OPENAI_ENDPOINT`` (``https://RESOURCE.openai.azure.com``);
    the key, from ``AZURE_OPENAI_API_KEY``, goes in the ``api-key`` header. The v1 API needs no
    ``api-version``; `api_version` sends one (with a ``base_url`` of the older
    ``/openai/deployments/NAME`` form, which requires it).
    """

    system: str = "azure"
    _default_base_url = ""  # from the endpoint
    _key_env = "AZURE_OPENAI_API_KEY"
    _key_header = "api-key"
    _default_profile = OPENAI_PROFILE

    def __init__(
        self,
        model: str,
        *,
        endpoint: str | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        if base_url is None:
            endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
            if not endpoint:
                raise UsageError(
                    f"no endpoint for azure model {model!r}: set the AZURE_OPENAI_ENDPOINT "
                    "environment variable or pass endpoint=..."
                )
            base_url = _azure_url(endpoint)
        if api_version:
            options["query_params"] = {
                "api-version": api_version,
                **(options.get("query_params") or {}),
            }
        super().__init__(model, base_url=base_url, **options)


def _azure_url(endpoint: str) -> str:
    """The v1 base URL of an Azure resource endpoint (kept as given when it names a path)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if "/openai" in endpoint else f"{endpoint}/openai/v1"
