"""Models: what an agent sends its requests to (`Model`), and the model a string such as
``"openai:gpt-4o"`` names (`infer_model`).

The model classes: `OpenAICompatible` (in `compatible`) talks to any chat-completions server;
`OpenAI` and `OpenRouter` (in `providers`) and the other providers' classes (in `hosted`) add
their base URLs, key variables, headers and body extras; all take the `ClientOptions` (in
`options`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from .._errors import UsageError
from .._messages import ModelRequest, ModelResponse, RequestUsage
from .profiles import ModelProfile
from .providers import PROVIDERS

if TYPE_CHECKING:
    from .._events import StreamDelta

__all__ = ["DeltaHandler", "Model", "ModelStream", "deliver", "infer_model"]

DeltaHandler = Callable[["StreamDelta"], Awaitable[None]]


class ModelStream(Protocol):
    """The deltas of one streamed answer; `response` is the whole answer once they are over."""

    def __aiter__(self) -> AsyncIterator[StreamDelta]: ...

    async def __anext__(self) -> StreamDelta: ...

    @property
    def response(self) -> ModelResponse: ...

    @property
    def usage(self) -> RequestUsage | None: ...


async def deliver(stream: ModelStream, on_delta: DeltaHandler) -> ModelResponse:
    """Hand each delta of `stream` to `on_delta`; the whole answer once they are over.

    A stream that can do it better does it itself, with a ``deliver(on_delta)`` method: the HTTP
    stream holds its deadline in one scope around the whole iteration there (a scope per chunk
    otherwise), so the deadline stays the stream's business and the run needs not know of it.
    """
    own: Callable[[DeltaHandler], Awaitable[ModelResponse]] | None = getattr(
        stream, "deliver", None
    )
    if own is not None:
        return await own(on_delta)
    async for delta in stream:
        await on_delta(delta)
    return stream.response


class Model(Protocol):
    """What the agent loop needs of a model.

    `system` names the provider for price look-ups (``"openai"``, ``"openrouter"``, ``"groq"``...,
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


def infer_model(model: str | Model) -> Model:
    """The model a string names: ``"openai:gpt-4o-mini"``, ``"openrouter:openai/gpt-4o"``,
    ``"groq:llama-3.3-70b-versatile"``... (`PROVIDERS` maps each prefix to its class).

    Only the first colon splits (model names may contain colons). A model object is returned
    as it is.
    """
    if not isinstance(model, str):
        return model
    provider, colon, name = model.partition(":")
    known = ", ".join(sorted(PROVIDERS))
    if not colon or not name:
        raise UsageError(
            f"model string {model!r} must look like 'provider:model'; known providers: {known}"
        )
    cls = PROVIDERS.get(provider)
    if cls is None:
        raise UsageError(f"unknown provider {provider!r} in {model!r}; known providers: {known}")
    return cls(name)
