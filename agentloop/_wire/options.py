"""The options every model class takes (`ClientOptions`), declared once, and the `Endpoint` they
describe.

`OpenAICompatible`, `OpenAI`, `OpenRouter` and `LocalModel` take them as keyword arguments
(``**options: Unpack[ClientOptions]``), so a type checker checks each name and value, and a
misspelt name is a `TypeError` at run time as it would be for a declared parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from .._errors import UsageError
from .._settings import ModelSettings
from .profiles import ModelProfile
from .rate_limit import RateLimit
from .retry import RetryPolicy

if TYPE_CHECKING:
    import httpx

    from .http import Endpoint

__all__ = ["DEFAULT_DEADLINE", "ClientOptions", "check_options", "open_endpoint"]

DEFAULT_DEADLINE = 600.0
"""The overall deadline of one request attempt, in seconds, unless the model or settings say."""
CONNECT_TIMEOUT = 5.0


class ClientOptions(TypedDict, total=False):
    """The keyword arguments every model class takes; each may be left out.

    - `api_key`: the key; by default the class's variable (``OPENAI_API_KEY``...) supplies it.
    - `headers`: sent with every request.
    - `timeout`: seconds (the overall deadline of each attempt, connect 5 s; default 600), or an
      `httpx.Timeout` for httpx's per-operation timeouts (the deadline is then 600 s).
      ``settings.timeout`` overrides the deadline per request.
    - `max_retries`: retries after the first attempt (default 2), when `retry` is not given.
    - `retry`: the whole `RetryPolicy`.
    - `http_client`: used as it is and never closed; otherwise one is owned per event loop.
    - `max_connections`: the owned client's connections (None: 100); requests beyond wait
      their turn. Ignored with an `http_client`.
    - `query_params`: sent with every request (Azure's ``api-version``).
    - `profile`: what the server accepts (by default the class's, or learned, see
      `OpenAICompatible`).
    - `extra_body`: fields added to every body (settings' ``extra_body`` still wins).
    - `settings`: defaults for every request through the model; the agent's and the run's
      settings override them field by field.
    - `rate_limit`: a `RateLimit` (requests and tokens per minute) shared by every request
      through the models given the same object.
    """

    api_key: str | None
    headers: Mapping[str, str] | None
    timeout: float | httpx.Timeout
    max_retries: int
    retry: RetryPolicy | None
    http_client: httpx.AsyncClient | None
    max_connections: int | None
    query_params: Mapping[str, str] | None
    profile: ModelProfile | None
    extra_body: Mapping[str, Any] | None
    settings: ModelSettings | None
    rate_limit: RateLimit | None


def check_options(owner: str, options: Mapping[str, object]) -> None:
    """Raise the `TypeError` Python raises for an unknown keyword argument, which `**options`
    would otherwise swallow."""
    for name in options:
        if name not in ClientOptions.__optional_keys__:
            raise TypeError(f"{owner}() got an unexpected keyword argument {name!r}")


def open_endpoint(model: str, base_url: str, options: ClientOptions) -> Endpoint:
    """The `Endpoint` of a model: its chat URL, timeouts, retry policy and connection pool."""
    from .http import Endpoint  # httpx and httpcore load with the first model

    max_connections = options.get("max_connections")
    if max_connections is not None and max_connections < 1:
        raise UsageError(f"max_connections must be >= 1, not {max_connections!r}")
    http_timeout, deadline = _timeouts(options.get("timeout", DEFAULT_DEADLINE))
    return Endpoint(
        url=_chat_url(base_url),
        params=options.get("query_params"),
        timeout=http_timeout,
        deadline=deadline,
        policy=options.get("retry") or RetryPolicy(max_retries=options.get("max_retries", 2)),
        http_client=options.get("http_client"),
        model_name=model,
        max_connections=max_connections,
        rate_limit=options.get("rate_limit"),
    )


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
