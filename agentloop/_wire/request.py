"""The wire form of one chat-completions request: the JSON body and the headers.

Called on every turn, so it is plain dict building: no validation models, no copies of tool or
output schemas (the `ToolDefinition` mappings are reused as they are). What a server accepts is
read from its `ModelProfile`; a value of None is never sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import UsageError
from .._log import get_logger
from .._messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ResponseFormat,
    SystemMessage,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from .._settings import ModelSettings
from .profiles import ModelProfile

# `json`, `prompted` and `_output` are imported where they are used: `compatible` imports this
# module, and `import agentloop` imports `compatible`. A local import costs well under a
# microsecond once the module is loaded.

__all__ = ["build_body", "build_headers", "encode_body", "message_to_wire"]

_log = get_logger()

# Settings copied as they are when set (the others need a rule of their own).
_PLAIN_SETTINGS = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "user",
    "store",
    "service_tier",
    "reasoning_effort",
)


def _assistant_to_wire(message: AssistantMessage, profile: ModelProfile) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant"}
    if message.content:
        wire["content"] = message.content
    elif message.tool_calls or message.refusal:
        # A tool-only (or refusal-only) turn: null, never "" (some upstreams reject empty
        # text), unless the server cannot take null (llama.cpp's server answers 500).
        wire["content"] = None if profile.null_content_with_tool_calls else ""
    else:
        wire["content"] = ""
    if message.refusal:
        wire["refusal"] = message.refusal
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in message.tool_calls
        ]
    for key, value in message.reasoning.items():
        if value is not None:
            wire[key] = value
    return wire


def message_to_wire(message: Message, profile: ModelProfile) -> dict[str, Any]:
    """One message as the API takes it."""
    if isinstance(message, UserMessage):
        content = message.content
        return {"role": "user", "content": content if isinstance(content, str) else list(content)}
    if isinstance(message, AssistantMessage):
        return _assistant_to_wire(message, profile)
    if isinstance(message, ToolMessage):
        # `name` is not part of the tool message on the wire.
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if isinstance(message, SystemMessage):  # pyright: ignore[reportUnnecessaryIsInstance]
        return {"role": message.role, "content": message.content}
    raise UsageError(f"not a message: {message!r}")


def _tool_to_wire(tool: ToolDefinition, profile: ModelProfile) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    if tool.strict and profile.strict_tools:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(
    choice: str, tools: Sequence[ToolDefinition], profile: ModelProfile
) -> str | dict[str, Any]:
    if choice in ("none", "auto"):
        return choice
    if choice == "required":
        if profile.tool_choice_required:
            return choice
        _log.debug("tool_choice_downgraded", requested="required", sent="auto")
        return "auto"
    if not any(tool.name == choice for tool in tools):
        known = ", ".join(tool.name for tool in tools)
        raise UsageError(
            f"tool_choice={choice!r} names no tool of this request; the tools are: {known}"
        )
    return {"type": "function", "function": {"name": choice}}


def _response_format(output: ResponseFormat, profile: ModelProfile) -> dict[str, Any] | None:
    support = profile.response_format
    if support == "json_schema":
        spec: dict[str, Any] = {"name": output.name}
        if output.description:
            spec["description"] = output.description
        spec["schema"] = output.schema
        if output.strict and profile.strict_tools:
            spec["strict"] = True
        return {"type": "json_schema", "json_schema": spec}
    if support == "json_object_schema":
        return {"type": "json_object", "schema": output.schema}
    if support == "json_object":
        return {"type": "json_object"}
    return None


Offer = tuple[tuple[ToolDefinition, ...], bool, int]
"""The tools a prompted-tools request offers, whether it requires a call, and how many calls
one reply may hold (1 unless ``parallel_tool_calls`` is allowed)."""
_PARALLEL_CALLS = 4
_USE_TOOLS = "Use the tools you are given when they help."


def _prompted_offer(request: ModelRequest, profile: ModelProfile) -> Offer | None:
    """What a prompted-tools request offers (the settings' tool_choice applied), or None when
    the tools go natively."""
    if not request.tools or profile.tool_mode != "prompted":
        return None
    settings = request.settings
    choice = settings.tool_choice if settings is not None else None
    parallel = settings is None or settings.parallel_tool_calls is not False
    calls = _PARALLEL_CALLS if parallel else 1
    if choice == "none":
        return (), False, calls
    if choice not in (None, "auto", "required"):
        return tuple(t for t in request.tools if t.name == choice), True, calls
    from .._output import OUTPUT_TOOL_NAME  # deferred: see the imports

    output_tool = any(t.name == OUTPUT_TOOL_NAME for t in request.tools)  # it is the answer
    return tuple(request.tools), choice == "required" or output_tool, calls


def _constrained(profile: ModelProfile) -> bool:
    return profile.response_format in ("json_schema", "json_object_schema")


def _answer_form(request: ModelRequest, profile: ModelProfile) -> str | None:
    """What a constrained prompted-tools reply answers with when it calls no tool (None: the
    reply is free)."""
    from .._output import OUTPUT_TOOL_NAME  # deferred: see the imports
    from .prompted import ANSWER_KEY

    if not _constrained(profile) or any(t.name == OUTPUT_TOOL_NAME for t in request.tools):
        return None
    if request.response_format is not None:
        return "the JSON of your final answer"
    return f'{{"{ANSWER_KEY}": "<your answer>"}}'


def _messages(
    request: ModelRequest, profile: ModelProfile, offer: Offer | None
) -> list[dict[str, Any]]:
    """The wire messages, with what the server cannot take as parameters said in the prompt:
    the tools (prompted tool mode) and the output schema (JSON mode without a schema)."""
    from .prompted import add_system_text, prompted_messages, schema_prompt, tools_prompt

    notes: list[str] = []
    if offer is not None:
        wire = prompted_messages(request.messages, profile)
        form = _answer_form(request, profile)
        if offer[0]:
            hint = form and f"When you need no tool, answer with {form}."
            notes.append(tools_prompt(offer[0], answer=hint))
        elif form is not None and request.response_format is None:  # tool_choice "none"
            notes.append(f"Answer with {form}.")
    elif profile.tool_results_as_text:
        wire = prompted_messages(request.messages, profile, calls_as_text=False)
    else:
        wire = [message_to_wire(message, profile) for message in request.messages]
    output = request.response_format
    if output is not None and profile.response_format != "json_schema":
        notes.append(schema_prompt(output.schema))
    if notes:
        add_system_text(wire, "\n\n".join(notes))
    if request.tools and profile.tools_need_system and wire[0].get("role") != "system":
        wire.insert(0, {"role": "system", "content": _USE_TOOLS})
    return wire


def _prompted_format(
    request: ModelRequest, profile: ModelProfile, offer: Offer
) -> dict[str, Any] | None:
    """The response format that holds a prompted-tools reply to a call or an answer, where the
    server takes a schema."""
    from .prompted import ANSWER_SCHEMA, reply_schema  # deferred: see the imports

    tools, required, calls = offer
    if not _constrained(profile):
        return None
    output = request.response_format
    if not tools:  # tool_choice "none": the text answer, held to its JSON as in other replies
        answer = ResponseFormat("reply", ANSWER_SCHEMA)
        return _response_format(answer, profile) if output is None else None
    schema = reply_schema(
        tools, output.schema if output else None, required=required, max_calls=calls
    )
    if schema is None:
        return None
    return _response_format(ResponseFormat("reply", schema), profile)


def _apply_settings(
    body: dict[str, Any],
    settings: ModelSettings,
    profile: ModelProfile,
    tools: Sequence[ToolDefinition],
) -> None:
    if settings.max_completion_tokens is not None:
        body[profile.max_tokens_field] = settings.max_completion_tokens
    for name in _PLAIN_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            body[name] = value
    if settings.stop is not None:
        body["stop"] = settings.stop if isinstance(settings.stop, str) else list(settings.stop)
    if settings.logit_bias is not None:
        body["logit_bias"] = dict(settings.logit_bias)
    if settings.metadata is not None:
        body["metadata"] = dict(settings.metadata)
    if tools and profile.tool_mode == "native":
        if settings.tool_choice is not None and profile.tool_choice:
            body["tool_choice"] = _tool_choice(settings.tool_choice, tools, profile)
        if settings.parallel_tool_calls is not None and profile.parallel_tool_calls:
            body["parallel_tool_calls"] = settings.parallel_tool_calls


def build_body(
    model_name: str,
    profile: ModelProfile,
    request: ModelRequest,
    *,
    stream: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a chat-completions request.

    `extra` holds the model's own body fields (OpenRouter's ``provider``, ``models``...); the
    settings' ``extra_body`` is merged after it, last, so the caller always has the final word.
    """
    if not request.messages:
        raise UsageError("a request needs at least one message")
    native_tools = bool(request.tools) and profile.tool_mode == "native"
    offer = _prompted_offer(request, profile)
    body: dict[str, Any] = {"model": model_name, "messages": _messages(request, profile, offer)}
    if native_tools:
        body["tools"] = [_tool_to_wire(tool, profile) for tool in request.tools]
    settings = request.settings
    if settings is not None:
        _apply_settings(body, settings, profile, request.tools)
    if native_tools and profile.tool_choice and "tool_choice" not in body:
        body["tool_choice"] = "auto"  # OpenAI's default; some servers offer tools only then
    prompted_format = _prompted_format(request, profile, offer) if offer is not None else None
    if settings is not None and settings.response_format is not None:
        body["response_format"] = settings.response_format
    elif prompted_format is not None:
        body["response_format"] = prompted_format
    elif request.response_format is not None:
        response_format = _response_format(request.response_format, profile)
        if response_format is not None:
            body["response_format"] = response_format
    if stream:
        body["stream"] = True
        if profile.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if extra:
        body.update(extra)
    if settings is not None and settings.extra_body:
        body.update(settings.extra_body)
    return body


def build_headers(
    *,
    stream: bool,
    api_key: str | None = None,
    api_key_header: str = "Authorization",
    default_headers: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers of one request; the key goes in `api_key_header` (``Bearer`` for Authorization).

    `extra_headers` (from the settings) come last and win, except over the key header.
    """
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if default_headers:
        headers.update(default_headers)
    if extra_headers:
        headers.update(extra_headers)
    if api_key:
        is_bearer = api_key_header.lower() == "authorization"
        headers[api_key_header] = f"Bearer {api_key}" if is_bearer else api_key
    return headers


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The body as compact UTF-8 JSON. Any `Mapping` or sequence is accepted (no copies made)."""
    import json  # deferred: see the imports

    try:
        text = json.dumps(
            body, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_jsonable
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the request body cannot be sent as JSON: {exc}") from exc
    return text.encode("utf-8")
