"""Models: the objects an agent sends its requests to, and model strings like ``"openai:gpt-4o"``.

`OpenAICompatible` talks to any chat-completions server; `OpenAI` and `OpenRouter` add their
base URLs, key variables, headers and body extras. A missing key is not an error until the first
request, which then raises `MissingAPIKeyError` naming the variable to set. Keys never appear in
a repr, a log event or an error message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from .._errors import APIError, APIStatusError, MissingAPIKeyError, UsageError
from .._log import get_logger
from .._messages import AssistantMessage, ModelRequest, ModelResponse, RequestUsage, add_usage
from .._settings import ModelSettings
from .adapt import AdaptedStream, adapt_response, adapt_stream
from .learn import lesson
from .profiles import (
    BUILT_IN_PROFILES,
    OPENAI_PROFILE,
    OPENROUTER_PROFILE,
    OPTIMISTIC_PROFILE,
    ModelProfile,
)
from .request import build_body, build_headers, encode_body
from .retry import RetryPolicy
from .silent import Drop, SilentDrops

if TYPE_CHECKING:
    import httpx

    from .chunks import StreamDelta
    from .http import Relearn, Transport
    from .model_stream import HTTPModelStream

__all__ = [
    "DEFAULT_DEADLINE",
    "Model",
    "ModelStream",
    "OpenAI",
    "OpenAICompatible",
    "OpenRouter",
    "infer_model",
]

DEFAULT_DEADLINE = 600.0
"""The overall deadline of one request attempt, in seconds, unless the model or settings say."""
CONNECT_TIMEOUT = 5.0
_log = get_logger()


class ModelStream(Protocol):
    """The deltas of one streamed answer; `response` is the whole answer once they are over."""

    def __aiter__(self) -> AsyncIterator[StreamDelta]: ...

    async def __anext__(self) -> StreamDelta: ...

    @property
    def response(self) -> ModelResponse: ...

    @property
    def usage(self) -> RequestUsage | None: ...


class Model(Protocol):
    """What the agent loop needs of a model.

    `system` names the provider for price look-ups (``"openai"``, ``"openrouter"``,
    ``"openai-compatible"``).
    """

    @property
    def name(self) -> str: ...

    @property
    def profile(self) -> ModelProfile: ...

    @property
    def system(self) -> str: ...

    async def request(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AbstractAsyncContextManager[ModelStream]: ...

    async def aclose(self) -> None: ...


def _profile_name(profile: ModelProfile) -> str:
    for name, known in BUILT_IN_PROFILES.items():
        if profile is known:
            return name
    return "custom"


def _timeouts(timeout: float | httpx.Timeout) -> tuple[httpx.Timeout, float]:
    """httpx's per-operation timeouts and the overall deadline of one attempt."""
    import httpx  # here, not at the top: `import agentloop` stays free of httpx (~60 ms)

    if isinstance(timeout, httpx.Timeout):
        return timeout, DEFAULT_DEADLINE
    if not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)), float(timeout)


def _chat_url(base_url: str) -> str:
    import httpx

    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UsageError(f"base_url {base_url!r} is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"base_url must be an http(s) URL with a host, not {base_url!r}")
    return base_url.rstrip("/") + "/chat/completions"


class OpenAICompatible:
    """A model behind any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp,
    Groq, Mistral, Azure...).

    - `timeout`: seconds (the overall deadline of each attempt, connect 5 s), or an
      `httpx.Timeout` for httpx's per-operation timeouts (the deadline is then 600 s).
      ``settings.timeout`` overrides the deadline per request.
    - `api_key_header`: ``"Authorization"`` (sent as ``Bearer KEY``) or, for Azure, ``"api-key"``.
    - `query_params`: sent with every request (Azure's ``api-version``).
    - `api_key_env`: the variable that supplies the key; when set, a missing key is an error.
    - `extra_body`: fields added to every body (settings' ``extra_body`` still wins).
    - `http_client`: used as it is and never closed; otherwise one is owned per event loop.
    - `max_connections`: the owned client's connections (None: 100); requests beyond wait
      their turn. Ignored with an `http_client`.
    - `profile`: what the server accepts. Without one the model starts from
      `OPTIMISTIC_PROFILE` and learns: an error answer that names a feature the request used
      (``tool_choice``, ``json_schema``, ``content: null``, tools altogether...) downgrades that
      feature for this model object, logs ``profile_learned`` once, and the request is sent
      again at once, without spending a retry. `probe` learns it up front.
    - `settings`: defaults for every request through this model; the agent's and the run's
      settings override them field by field.
    """

    system: str = "openai-compatible"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout = DEFAULT_DEADLINE,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        profile: ModelProfile | None = None,
        api_key_header: str = "Authorization",
        api_key_env: str | None = None,
        query_params: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int | None = None,
        settings: ModelSettings | None = None,
    ) -> None:
        from .http import Transport  # httpx and httpcore load with the first model

        if not model:
            raise UsageError("a model name is required")
        if max_connections is not None and max_connections < 1:
            raise UsageError(f"max_connections must be >= 1, not {max_connections!r}")
        self.name = model
        self.profile = profile or OPTIMISTIC_PROFILE
        self._learns = profile is None
        self._drops = SilentDrops()
        self._settings = settings
        self.base_url = base_url
        self._api_key = api_key
        self._api_key_env = api_key_env
        self._api_key_header = api_key_header
        self._headers = {"User-Agent": "agentloop", **(headers or {})}
        self._extra_body = dict(extra_body or {})
        http_timeout, deadline = _timeouts(timeout)
        policy = retry or RetryPolicy(max_retries=max_retries)
        self._transport: Transport = Transport(
            url=_chat_url(base_url),
            params=query_params,
            timeout=http_timeout,
            deadline=deadline,
            policy=policy,
            http_client=http_client,
            model_name=model,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.name!r}, base_url={self.base_url!r}, "
            f"profile={'learning' if self._learns else _profile_name(self.profile)})"
        )

    @property
    def default_headers(self) -> dict[str, str]:
        """The headers sent with every request, the key excepted."""
        return dict(self._headers)

    @property
    def extra_body(self) -> dict[str, Any]:
        """The fields added to every body."""
        return dict(self._extra_body)

    def _key(self) -> str | None:
        key = self._api_key
        if key is None and self._api_key_env is not None:
            key = os.environ.get(self._api_key_env) or None
            if key is None:
                raise MissingAPIKeyError(
                    f"no API key for {self.system} model {self.name!r}: set the "
                    f"{self._api_key_env} environment variable or pass api_key=..."
                )
        return key

    @property
    def learns(self) -> bool:
        """Whether this model learns its profile from the server's error answers (it does when
        it was built without a profile)."""
        return self._learns

    def _body(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        return build_body(self.name, self.profile, request, stream=stream, extra=self._extra_body)

    def _prepare(
        self, request: ModelRequest, *, stream: bool
    ) -> tuple[dict[str, Any], dict[str, str], str]:
        key = self._key()
        settings: ModelSettings | None = request.settings
        body = self._body(request, stream=stream)
        headers = build_headers(
            stream=stream,
            api_key=key,
            api_key_header=self._api_key_header,
            default_headers=self._headers,
            extra_headers=settings.extra_headers if settings is not None else None,
        )
        return body, headers, key or ""

    def _with_defaults(self, request: ModelRequest) -> ModelRequest:
        if self._settings is None:
            return request
        return dataclasses.replace(request, settings=self._settings | request.settings)

    @staticmethod
    def _deadline(request: ModelRequest) -> float | None:
        return request.settings.timeout if request.settings is not None else None

    def _relearner(self, request: ModelRequest, body: dict[str, Any], *, stream: bool) -> Relearn:
        sent = [(body, self.profile)]

        def relearn(error: APIStatusError) -> bytes | None:
            body, built_with = sent[0]
            if not self._learns or lesson(error, body, built_with) is None:
                return None
            now = lesson(error, body, self.profile)  # None: another request learned it first
            if now is not None:
                self.profile = now.profile
                _log.warning(
                    "profile_learned", model=self.name, feature=now.feature, server_said=now.message
                )
            sent[0] = (self._body(request, stream=stream), self.profile)
            return encode_body(sent[0][0])

        return relearn

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one non-stream request, with retries (and learning, see the class doc).

        The usage of the answer includes what a learning model spent finding out what the
        server drops (its one-token checks, and an answer sent again), so a run pays for all.
        """
        request = self._with_defaults(request)
        response = await self._send(request)
        if not self._learns:
            return response
        spent: list[RequestUsage] = []

        async def check(probe: ModelRequest) -> ModelResponse:
            answer = await self._checker(probe)
            spent.append(answer.usage)
            return answer

        drop = await self._drops.after(check, request, response, self.profile)
        if drop is not None:
            self._route_around(drop)
            spent.append(response.usage)
            response = await self._send(request)
        return response.replace(usage=add_usage(response.usage, spent)) if spent else response

    async def _checker(self, request: ModelRequest) -> ModelResponse:
        """A silent-drop check's request: sent once, and its failure is no answer (an empty
        usage), never the caller's error."""
        try:
            return await self._send(request, retry=False)
        except APIError:
            return ModelResponse(AssistantMessage(), RequestUsage(reported=False))

    async def _send(self, request: ModelRequest, *, retry: bool = True) -> ModelResponse:
        body, headers, key = self._prepare(request, stream=False)
        response = await self._transport.complete(
            encode_body(body),
            headers,
            deadline=self._deadline(request),
            secret=key,
            relearn=self._relearner(request, body, stream=False),
            retry=retry,
        )
        return adapt_response(response, request, self.profile)

    def stream(self, request: ModelRequest) -> HTTPModelStream | AdaptedStream:
        """Stream one request: ``async with model.stream(req) as s: async for delta in s``."""
        request = self._with_defaults(request)

        def open_stream() -> HTTPModelStream:
            body, headers, key = self._prepare(request, stream=True)
            return self._transport.stream(
                encode_body(body),
                headers,
                deadline=self._deadline(request),
                secret=key,
                relearn=self._relearner(request, body, stream=True),
            )

        async def before() -> None:
            if self._learns:
                drop = await self._drops.before(self._checker, request, self.profile)
                if drop is not None:
                    self._route_around(drop)

        def on_empty() -> bool:
            if not self._learns or not self.profile.stream_tools:
                return False
            self.profile = self.profile.replace(stream_tools=False)
            _log.warning(
                "profile_learned",
                model=self.name,
                feature="stream_tools",
                server_said="a stream with tools ended with nothing in it",
            )
            return True

        return adapt_stream(
            open_stream,
            request,
            lambda: self.profile,
            before=before,
            fetch=partial(self._send, request),
            on_empty=on_empty,
        )

    def _route_around(self, drop: Drop) -> None:
        feature, changes = drop
        self.profile = self.profile.replace(**changes)
        _log.warning(
            "profile_learned",
            model=self.name,
            feature=feature,
            server_said=f"the prompt cost as many tokens with the {feature} as without them",
        )

    async def probe(self) -> ModelProfile:
        """Learn what the server accepts in a few small requests; returns the profile.

        One request uses every feature a profile describes (a tool, ``tool_choice: "required"``,
        ``strict``, ``parallel_tool_calls``, a ``json_schema`` response format, an assistant turn
        with ``content: null``, an output cap of 16 tokens); each error answer downgrades what it
        names and the request is sent again. The same request with ``tool_choice`` left to its
        default follows (a server may take "required" and refuse "auto"), then a streamed one
        checks ``stream_options``.
        Save the result and pass it as ``profile=`` to skip the learning next time. A model built
        with a profile probes too, but keeps its profile unless the probe learned something.
        """
        from .probe import probe_requests

        learns, self._learns = self._learns, True
        try:
            plain, auto, streamed = probe_requests()
            await self.request(plain)
            await self.request(auto)
            async with self.stream(streamed) as stream:
                async for _ in stream:
                    pass
        finally:
            self._learns = learns
        return self.profile

    async def aclose(self) -> None:
        """Close the HTTP client this model owns in the current event loop."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class OpenAI(OpenAICompatible):
    """OpenAI's API. Key from ``OPENAI_API_KEY``; base URL ``OPENAI_BASE_URL`` or the official
    one; ``OpenAI-Organization`` / ``OpenAI-Project`` from the arguments or ``OPENAI_ORG_ID`` /
    ``OPENAI_PROJECT_ID``."""

    system: str = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout = DEFAULT_DEADLINE,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        profile: ModelProfile | None = None,
        extra_body: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        own: dict[str, str] = {}
        if organization:
            own["OpenAI-Organization"] = organization
        if project:
            own["OpenAI-Project"] = project
        super().__init__(
            model,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            api_key=api_key,
            api_key_env="OPENAI_API_KEY",
            headers={**own, **(headers or {})},
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            profile=profile or OPENAI_PROFILE,
            extra_body=extra_body,
            retry=retry,
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
        api_key: str | None = None,
        base_url: str | None = None,
        app_url: str | None = None,
        app_title: str | None = None,
        provider: Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        include_usage: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout = DEFAULT_DEADLINE,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        profile: ModelProfile | None = None,
        extra_body: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
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
        super().__init__(
            model,
            base_url=base_url
            or os.environ.get("OPENROUTER_BASE_URL")
            or "https://openrouter.ai/api/v1",
            api_key=api_key,
            api_key_env="OPENROUTER_API_KEY",
            headers={**own, **(headers or {})},
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            profile=profile or OPENROUTER_PROFILE,
            extra_body={**body, **(extra_body or {})},
            retry=retry,
        )


_PROVIDERS: dict[str, type[OpenAICompatible]] = {"openai": OpenAI, "openrouter": OpenRouter}


def infer_model(model: str | Model) -> Model:
    """The model a string names: ``"openai:gpt-4o-mini"``, ``"openrouter:openai/gpt-4o"``.

    Only the first colon splits (model names may contain colons). A model object is returned
    as it is.
    """
    if not isinstance(model, str):
        return model
    provider, colon, name = model.partition(":")
    known = ", ".join(sorted(_PROVIDERS))
    if not colon or not name:
        raise UsageError(
            f"model string {model!r} must look like 'provider:model'; known providers: {known}"
        )
    cls = _PROVIDERS.get(provider)
    if cls is None:
        raise UsageError(f"unknown provider {provider!r} in {model!r}; known providers: {known}")
    return cls(name)  # pyright: ignore[reportCallIssue]
