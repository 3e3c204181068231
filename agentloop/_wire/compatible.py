"""`OpenAICompatible`: a model behind any chat-completions server, which learns what it accepts.

`OpenAI` and `OpenRouter` (in `providers`) are this class with their base URLs, key variables,
headers and body extras. A missing key is not an error until the first request, which then
raises `MissingAPIKeyError` naming the variable to set. Keys never appear in a repr, a log event
or an error message.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

from .._errors import APIError, APIStatusError, MissingAPIKeyError, UsageError
from .._log import get_logger
from .._messages import AssistantMessage, ModelRequest, ModelResponse, RequestUsage, add_usage
from .._settings import ModelSettings
from .adapt import AdaptedStream, adapt_response, adapt_stream
from .learn import lesson
from .options import ClientOptions, check_options, open_endpoint
from .profiles import BUILT_IN_PROFILES, OPTIMISTIC_PROFILE, ModelProfile
from .request import build_body, build_headers, encode_body
from .silent import Drop, SilentDrops
from .transport import replaying

if TYPE_CHECKING:
    from .http import Endpoint, Relearn
    from .model_stream import HTTPModelStream

__all__ = ["OpenAICompatible"]

_log = get_logger()


def _profile_name(profile: ModelProfile) -> str:
    for name, known in BUILT_IN_PROFILES.items():
        if profile is known:
            return name
    return "custom"


class OpenAICompatible:
    """A model behind any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp,
    Groq, Mistral, Azure...). `base_url` is the URL ``/chat/completions`` is appended to.

    - `api_key_header`: ``"Authorization"`` (sent as ``Bearer KEY``) or, for Azure, ``"api-key"``.
    - `api_key_env`: the variable that supplies the key; when set, a missing key is an error.
      With neither it nor `api_key`, no key is sent.
    - `options`: the `ClientOptions` every model class takes (`timeout`, `retry`, `headers`,
      `http_client`, `max_connections`, `query_params`, `settings`...).
    - `profile` (one of the options): what the server accepts. Without one the model starts from
      `OPTIMISTIC_PROFILE` and learns: an error answer that names a feature the request used
      (``tool_choice``, ``json_schema``, ``content: null``, tools altogether...) downgrades that
      feature for this model object, logs ``profile_learned`` once, and the request is sent
      again at once, without spending a retry. `probe` learns it up front.
    """

    system: str = "openai-compatible"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_header: str = "Authorization",
        api_key_env: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not model:
            raise UsageError("a model name is required")
        check_options(type(self).__name__, options)
        profile = options.get("profile")
        self.name: str = model
        self.profile: ModelProfile = profile or OPTIMISTIC_PROFILE
        self._learns = profile is None
        self._drops = SilentDrops()
        self._settings = options.get("settings")
        self.base_url: str = base_url
        self._api_key = options.get("api_key")
        self._api_key_env = api_key_env
        self._api_key_header = api_key_header
        self._headers = {"User-Agent": "agentloop", **(options.get("headers") or {})}
        self._extra_body = dict(options.get("extra_body") or {})
        self._endpoint: Endpoint = open_endpoint(model, base_url, options)

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
            if key is None and not replaying():  # a cassette replaying needs no key
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

    def _relearner(
        self, request: ModelRequest, body: dict[str, Any], *, stream: bool
    ) -> Relearn | None:
        """What a learning model asks about an error answer (None for a model given its
        profile: it learns nothing, and the body need not be kept until the answer comes)."""
        if not self._learns:
            return None
        sent = [(body, self.profile)]

        def relearn(error: APIStatusError) -> bytes | None:
            body, built_with = sent[0]
            if lesson(error, body, built_with) is None:
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
        response = await self._endpoint.complete(
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
            return self._endpoint.stream(
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
        await self._endpoint.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
