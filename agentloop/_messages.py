"""The messages of a conversation and the normalized answer of one model request.

These are plain frozen dataclasses: cheap to build on every turn, and serializable through
`messages_to_json` / `messages_from_json` so that a run's history can be stored and resumed.
The wire form (what the API receives) is built by `_request.py`, never here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ._settings import ModelSettings

__all__ = [
    "AssistantMessage",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "RequestUsage",
    "ResponseFormat",
    "SystemMessage",
    "ToolCall",
    "ToolDefinition",
    "ToolMessage",
    "UserMessage",
    "add_usage",
    "messages_from_json",
    "messages_to_json",
]


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """Instructions. `role` may be ``"developer"`` for models that want it."""

    content: str
    role: Literal["system", "developer"] = "system"


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A user turn: text, or a list of content parts (text, image_url, input_audio, file)."""

    content: str | tuple[Mapping[str, Any], ...]
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for. `arguments` is the raw JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    """A model turn.

    `reasoning` keeps the provider's reasoning fields verbatim (``reasoning``,
    ``reasoning_content``, ``reasoning_details``) so they can be sent back unchanged.
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    reasoning: Mapping[str, Any] = field(default_factory=lambda: {})
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True, slots=True)
class ToolMessage:
    """The answer to one tool call. `name` is kept for readers; it is not sent."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    role: Literal["tool"] = "tool"


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """What the model is told about one tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """The structured output the request asks for.

    The request builder turns this into ``json_schema`` or ``json_object`` (with the schema
    attached where the profile says the server takes it), as the model's profile allows.
    """

    name: str
    schema: Mapping[str, Any]
    strict: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one chat-completions request is built from."""

    messages: Sequence[Message]
    tools: Sequence[ToolDefinition] = ()
    settings: ModelSettings | None = None
    response_format: ResponseFormat | None = None


@dataclass(frozen=True, slots=True)
class RequestUsage:
    """Tokens and cost of one request, as the provider reported them.

    `cost` is the provider's own figure in USD (OpenRouter's ``usage.cost``), else None.
    `reported` is False when the server sent no usage at all (llama-cpp-python's server in a
    stream, for example): the zeros then mean "unknown", not "free".
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    reported: bool = True


def add_usage(usage: RequestUsage, more: Sequence[RequestUsage]) -> RequestUsage:
    """`usage` plus the reported ones of `more` (a cost is kept only where every part has one)."""
    counted = [u for u in more if u.reported]
    if not counted:
        return usage
    costs = [usage.cost, *(u.cost for u in counted)]
    return RequestUsage(
        input_tokens=usage.input_tokens + sum(u.input_tokens for u in counted),
        output_tokens=usage.output_tokens + sum(u.output_tokens for u in counted),
        cached_tokens=usage.cached_tokens + sum(u.cached_tokens for u in counted),
        reasoning_tokens=usage.reasoning_tokens + sum(u.reasoning_tokens for u in counted),
        cost=None if None in costs else sum(c for c in costs if c is not None),
        reported=usage.reported,
    )


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """The normalized answer of one request, from a JSON body or a whole stream.

    `finish_reason` is normalized to ``stop``, ``length``, ``tool_calls``, ``content_filter``,
    ``error`` or None; `raw_finish_reason` keeps what the server said. `extra` holds the
    top-level fields we do not use, for callers who want them.

    `queue_wait` is the seconds the request waited for a connection slot (all its attempts; 0.0
    when one was free at once), `rate_wait` those it waited for its rate limit's turn: both
    are part of `latency`, neither of an attempt's deadline.
    """

    message: AssistantMessage
    usage: RequestUsage = RequestUsage()
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    model: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: {})
    retries: int = 0
    time_to_first_token: float | None = None
    latency: float | None = None
    queue_wait: float = 0.0
    rate_wait: float = 0.0

    def replace(self, **changes: Any) -> ModelResponse:
        # Field by field, as the generated __init__ does: `dataclasses.replace` costs twice as
        # much, and every request's answer is replaced at least once (its timing).
        if not changes.keys() <= _RESPONSE_FIELDS:
            unknown = sorted(changes.keys() - _RESPONSE_FIELDS)
            raise TypeError(f"ModelResponse has no field {unknown[0]!r}")
        new = object.__new__(ModelResponse)
        for name in _RESPONSE_FIELDS:
            value = changes[name] if name in changes else getattr(self, name)
            object.__setattr__(new, name, value)
        return new


_RESPONSE_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelResponse))


@cache
def _adapter() -> TypeAdapter[list[Message]]:
    from typing import Annotated

    from pydantic import Field, TypeAdapter

    return TypeAdapter(list[Annotated[Message, Field(discriminator="role")]])  # type: ignore[arg-type]


def messages_to_json(messages: Sequence[Message]) -> bytes:
    """Serialize a history to JSON bytes (the inverse of `messages_from_json`)."""
    return _adapter().dump_json(list(messages))


def messages_from_json(data: str | bytes) -> list[Message]:
    """Load a history written by `messages_to_json`."""
    return _adapter().validate_json(data)
