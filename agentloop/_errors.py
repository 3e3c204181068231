"""Errors raised by agentloop, and the signals user code raises.

Every error agentloop raises derives from `AgentloopError`. Where a built-in exception is what a
caller would naturally catch, the error derives from it too (`APITimeoutError` is a
`TimeoutError`, `UsageError` a `ValueError`, and so on):

    AgentloopError
    ├── UsageError (ValueError)                 the library was called wrongly
    │   ├── SettingsError                       a setting outside its allowed range
    │   ├── SchemaError                         a schema we cannot send (limits, bad shape)
    │   └── MissingAPIKeyError                  no key, names the variable to set
    ├── APIError                                talking to the server failed
    │   ├── APIConnectionError (ConnectionError)
    │   │   └── APITimeoutError (TimeoutError)  per-read timeout or the overall deadline
    │   ├── APIStatusError                      the server answered with an error
    │   │   ├── BadRequestError                 400
    │   │   │   └── ContextLengthError          400 context_length_exceeded
    │   │   ├── AuthenticationError             401
    │   │   ├── InsufficientCreditsError        402, or 429 insufficient_quota: never retried
    │   │   ├── PermissionDeniedError           403
    │   │   │   └── ModerationError             403 flagged input
    │   │   ├── NotFoundError                   404
    │   │   ├── ConflictError                   409
    │   │   ├── RateLimitError                  429
    │   │   └── InternalServerError             5xx
    │   ├── ProtocolError                       a response we cannot read
    │   │   └── IncompleteStreamError           a stream that stopped before its end
    │   └── AllModelsFailedError                every model of a `FallbackModel` failed
    ├── CassetteError (AssertionError)          a test's cassette has no answer for a request
    └── RunError                                a run could not finish
        ├── UsageLimitExceeded                  a limit of `Limits` was reached
        ├── OutputError                         no valid output
        │   ├── OutputValidationError           invalid after every re-ask
        │   ├── OutputTruncatedError            finish_reason "length"
        │   └── RefusalError                    the model refused
        ├── ToolExecutionError                  a tool raised and the agent ends runs on tool errors
        ├── ToolsetError                        a source of tools failed (its tools cannot run)
        │   └── MCPServerError                  an MCP server did not start, or died
        │       └── MCPTimeoutError (TimeoutError)  it did not answer within its timeout
        └── ContextWindowError                  nothing fits the model's context window

    ToolRetry (Exception)                       a signal from user code, not an error

Every `AgentloopError` that ends a run carries `.messages` (the transcript so far) and `.usage`
(what the run consumed so far), so nothing the run paid for is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._messages import Message
    from ._usage import Usage

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AgentloopError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CassetteError",
    "ConflictError",
    "ContextLengthError",
    "ContextWindowError",
    "IncompleteStreamError",
    "InsufficientCreditsError",
    "InternalServerError",
    "MCPServerError",
    "MCPTimeoutError",
    "MissingAPIKeyError",
    "ModerationError",
    "NotFoundError",
    "OutputError",
    "OutputTruncatedError",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RefusalError",
    "RunError",
    "SchemaError",
    "SettingsError",
    "ToolExecutionError",
    "ToolRetry",
    "ToolsetError",
    "UsageError",
    "UsageLimitExceeded",
]


class AgentloopError(Exception):
    """The root of every error agentloop raises.

    `messages` and `usage` are filled in by the run loop when the error ends a run.
    """

    messages: list[Message]
    usage: Usage | None
    cost: float | None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.messages = []
        self.usage = None
        self.cost = None


class UsageError(AgentloopError, ValueError):
    """The library was called wrongly: a bad signature, a bad argument, a bad combination."""


class SettingsError(UsageError):
    """A model setting is outside its allowed range."""


class SchemaError(UsageError):
    """A JSON schema that cannot be sent: beyond the API's limits or not of a usable shape."""


class MissingAPIKeyError(UsageError):
    """No API key was given and the environment variable that supplies it is unset."""


class APIError(AgentloopError):
    """Talking to the chat-completions server failed."""


class APIConnectionError(APIError, ConnectionError):
    """The request did not get an answer: refused, reset, DNS, TLS, or a broken stream."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A read timed out, or the request's overall deadline passed."""


class APIStatusError(APIError):
    """The server answered with an error status, or an error body inside a 200 stream."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})
        self.retry_after = retry_after

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status_code={self.status_code}, code={self.code!r}, {self.message!r})"


class BadRequestError(APIStatusError):
    """400: the server rejected the request as malformed."""


class ContextLengthError(BadRequestError):
    """400: the prompt and requested output exceed the model's context."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class InsufficientCreditsError(APIStatusError):
    """402 (OpenRouter) or 429 insufficient_quota (OpenAI): out of credits. Never retried."""


class PermissionDeniedError(APIStatusError):
    """403: not allowed."""


class ModerationError(PermissionDeniedError):
    """403: the input was flagged by a moderation filter."""


class NotFoundError(APIStatusError):
    """404: unknown model or endpoint."""


class ConflictError(APIStatusError):
    """409: a conflict; retried."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried unless the wait asked for is beyond the cap."""


class InternalServerError(APIStatusError):
    """5xx: the server or an upstream provider failed; retried."""


class ProtocolError(APIError, ValueError):
    """The server's answer does not follow the chat-completions protocol."""


class IncompleteStreamError(ProtocolError):
    """A stream ended with neither a finish reason nor [DONE]; `partial` keeps what came."""

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class AllModelsFailedError(APIError):
    """Every model of a `FallbackModel` failed: `failures` holds each model's name and error,
    in the order they were asked (the last one is also the ``__cause__``)."""

    def __init__(self, failures: list[tuple[str, APIError]]) -> None:
        lines = "; ".join(f"{name}: {type(error).__name__}: {error}" for name, error in failures)
        super().__init__(f"every model failed ({lines})")
        self.failures = failures


class CassetteError(AgentloopError, AssertionError):
    """A cassette (`agentloop.testing.cassette`) cannot answer a request: none recorded matches
    it (the message names the request and what differs), or the file is missing or unreadable.
    An `AssertionError`, so that a test fails rather than errors; never retried."""


class RunError(AgentloopError):
    """A run could not finish."""


class UsageLimitExceeded(RunError):
    """A limit was reached; `limit` names it (for example ``"max_requests"``)."""

    def __init__(self, message: str, *, limit: str, value: float, observed: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.observed = observed


class OutputError(RunError):
    """The run ended without a valid output."""


class OutputValidationError(OutputError):
    """The output stayed invalid after every re-ask; `errors` holds the last validation message."""

    def __init__(self, message: str, *, errors: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.errors = errors
        self.raw = raw


class OutputTruncatedError(OutputError):
    """The model stopped at its token limit (finish_reason "length") before the output was whole."""


class RefusalError(OutputError):
    """The model refused to answer; `refusal` holds its text."""

    def __init__(self, message: str, *, refusal: str) -> None:
        super().__init__(message)
        self.refusal = refusal


class ToolExecutionError(RunError):
    """A tool raised and the agent is configured to end the run on tool errors."""

    def __init__(self, message: str, *, tool_name: str, tool_call_id: str) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.tool_call_id = tool_call_id


class ToolsetError(RunError):
    """A source of tools found at run time (see `Toolset`) failed; the run cannot go on with it.

    Raised inside a tool call, it ends the run (it is not sent to the model as a tool error)."""


class MCPServerError(ToolsetError):
    """An MCP server did not start, died, or answered outside the protocol; `server` names it."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


class MCPTimeoutError(MCPServerError, TimeoutError):
    """An MCP server did not answer a request within its timeout."""


class ContextWindowError(RunError):
    """The request cannot fit the model's context window, even after the history policy ran.

    `prompt_tokens` is the counted prompt, `limit` the prompt tokens allowed (the `context` window
    minus the output reserved); None when unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        limit: int | None = None,
        context: int | None = None,
    ) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.limit = limit
        self.context = context


class ToolRetry(Exception):
    """Raise from a tool or an output validator to send `message` back to the model.

    This is a signal from user code, not an error: the model gets the message and may try again,
    within the tool's (or the output's) retry budget.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
