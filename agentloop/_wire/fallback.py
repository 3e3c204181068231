"""`FallbackModel`: models tried in order, the next when one fails after its own retries.

A request goes to the first model. When it fails with an error `falls_over` accepts (by
default: the server could not be reached or timed out, a 5xx, a 429, an exhausted quota, a model
or capability the server does not have), the same request goes to the next model, and so on.
An error about the request itself (a 400 on a bad schema, a 401) ends the request at once, as it
would on that model alone, unless `on=` says otherwise. When every model failed,
`AllModelsFailedError` carries each model's error, in order.

A stream falls over only while it opens (up to the response headers, with the model's retries):
once its first byte is read it belongs to the model that sent it.

`adapt` lets the run loop give each model its own request (its output mode, tools and response
format follow its profile); without it, every model gets the same request, which its own request
builder fits to its profile.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from .._errors import (
    AllModelsFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    ContextLengthError,
    InsufficientCreditsError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    UsageError,
)
from .._log import get_logger
from .._messages import ModelRequest, ModelResponse
from .profiles import ModelProfile

if TYPE_CHECKING:
    from .models import Model, ModelStream

__all__ = ["Adapt", "FallbackModel", "falls_over"]

Adapt = Callable[["Model", ModelRequest], ModelRequest]
"""The request one model of a `FallbackModel` is sent, from the request as built for the first."""

FallOver = Callable[[APIError], bool] | tuple[type[APIError], ...]

_log = get_logger()
_UNSUPPORTED = re.compile(
    r"not supported|unsupported|does not support|doesn't support|no endpoints found|"
    r"not available|is not enabled",
    re.IGNORECASE,
)
_ALWAYS = (
    APIConnectionError,
    InternalServerError,
    RateLimitError,
    InsufficientCreditsError,
    NotFoundError,
    ContextLengthError,
)


def falls_over(error: APIError) -> bool:
    """The default of `FallbackModel(on=...)`: whether the next model should be asked.

    Yes for what another model may well not share: a connection error or timeout, a 5xx, a 429,
    an exhausted quota (402, or 429 ``insufficient_quota``), a 404 (no such model there), a
    prompt longer than the model's context, and an answer that says the server does not support
    something the request used (tools, a response format, images...). No for the rest: a bad
    request (400), a wrong key (401), a forbidden or flagged input (403).
    """
    if isinstance(error, _ALWAYS):
        return True
    if isinstance(error, APIStatusError) and error.status_code in (400, 422, 501):
        return bool(_UNSUPPORTED.search(error.message))
    return False


class FallbackModel:
    """Models tried in order: `primary`, then each of `others` when the one before failed.

    - `primary`, `others`: model objects or model strings (``"openrouter:openai/gpt-4o"``).
    - `on`: which errors fall over to the next model: a function of the error (default
      `FallbackModel.falls_over`) or a tuple of error classes. A 400 falls over only if `on`
      says so.

    `name`, `profile` and `system` are the primary's: the run fits its context window and counts
    its tokens with them. In a run, each request is built for the model it goes to (its profile
    picks the output mode, tools and response format), its usage is priced at that model's rate,
    and `RunResult.requests[i].answered_by` names the model that answered
    (`RunResult.usage_by_model` and `cost_by_model` add them up).
    """

    def __init__(self, primary: Model | str, *others: Model | str, on: FallOver | None = None):
        from .models import infer_model

        if not others:
            raise UsageError("FallbackModel needs at least two models: the primary and a fallback")
        self.models: tuple[Model, ...] = tuple(infer_model(m) for m in (primary, *others))
        self._on: Callable[[APIError], bool] = falls_over
        if isinstance(on, tuple):
            kinds: tuple[type[APIError], ...] = on  # pyright: ignore[reportUnknownVariableType]
            self._on = lambda error: isinstance(error, kinds)
        elif on is not None:
            self._on = on

    @staticmethod
    def falls_over(error: APIError) -> bool:
        """The default of `on` (see `falls_over`), to build on:
        ``on=lambda e: FallbackModel.falls_over(e) or isinstance(e, BadRequestError)``."""
        return falls_over(error)

    def __repr__(self) -> str:
        names = ", ".join(repr(m) for m in self.models)
        return f"FallbackModel({names})"

    @property
    def name(self) -> str:
        return self.models[0].name

    @property
    def profile(self) -> ModelProfile:
        return self.models[0].profile

    @property
    def system(self) -> str:
        return self.models[0].system

    def _next_or_raise(self, model: Model, error: APIError, failures: list[APIError]) -> None:
        """Note `model`'s failure; raise when it should not fall over or was the last."""
        if not self._on(error):
            raise error
        failures.append(error)
        if len(failures) == len(self.models):
            raise AllModelsFailedError(
                [(m.name, e) for m, e in zip(self.models, failures, strict=True)]
            ) from error
        following = self.models[len(failures)]
        _log.warning(
            "model_fallback",
            model=model.name,
            error=type(error).__name__,
            status=getattr(error, "status_code", None),
            next_model=following.name,
        )

    async def request(self, request: ModelRequest, *, adapt: Adapt | None = None) -> ModelResponse:
        """The first answer of the models in order (see the class)."""
        failures: list[APIError] = []
        for model in self.models:
            sent = adapt(model, request) if adapt is not None else request
            try:
                return await model.request(sent)
            except APIError as error:
                self._next_or_raise(model, error, failures)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self, request: ModelRequest, *, adapt: Adapt | None = None
    ) -> AbstractAsyncContextManager[ModelStream]:
        """The stream of the first model that opens one (see the class)."""
        return self._stream(request, adapt)

    @asynccontextmanager
    async def _stream(
        self, request: ModelRequest, adapt: Adapt | None
    ) -> AsyncGenerator[ModelStream]:
        failures: list[APIError] = []
        for model in self.models:
            sent = adapt(model, request) if adapt is not None else request
            stack = AsyncExitStack()
            try:
                stream = await stack.enter_async_context(model.stream(sent))
            except APIError as error:
                self._next_or_raise(model, error, failures)
                continue
            async with stack:
                yield stream
            return

    async def aclose(self) -> None:
        """Close every model's HTTP clients in this event loop."""
        for model in self.models:
            await model.aclose()
