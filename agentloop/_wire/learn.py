"""Learning what a server accepts from its error answers.

A model built without a profile starts optimistic (`OPTIMISTIC_PROFILE`). When the server answers
an error that names a feature the request used (null assistant content, a ``json_schema``
response format, ``tool_choice``, ``strict``, ``parallel_tool_calls``, ``stream_options``, the
output-cap field, tools altogether), `lesson` returns the profile without that feature; the model
keeps it, logs it once (``profile_learned``) and sends the request again at once, without spending
a retry. A feature is only ever downgraded when the request that failed used it, so a profile
cannot learn the wrong thing from an unrelated error.

`about_the_request` tells the transport that a 5xx is the server failing on this request (a
validation or template error): sending it again unchanged would fail again, so it is not retried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from .._errors import APIStatusError
from .profiles import ModelProfile

__all__ = ["Lesson", "about_the_request", "lesson"]

Body = Mapping[str, Any]
# The patterns are strings, compiled on first use (`re` caches them) rather than at import: only
# an error answer needs them, and a dozen case-insensitive compiles cost milliseconds.
_REJECTS = (
    r"not supported|unsupported|not support|unrecognized|unknown|not allowed|not permitted|"
    r"extra (fields|inputs)|unexpected|invalid|not implemented|cannot|can't|must be|requires|"
    r"only .{0,40} (is|are) supported|expected|not a valid|should be|must either|can only|error"
)
_VALUE_PROBLEM = r"too large|at least|at most|maximum context|exceed|greater|less"
_LEARNABLE_STATUSES = frozenset({400, 404, 415, 422, 500, 501})
_REQUEST_FAULT = (
    r"validation error|invalid|not supported|unsupported|unrecognized|is required|missing|"
    r"expected|must be|template|jinja|TypeError|KeyError|ValueError|AttributeError|"
    r"not implemented|cannot|can't"
)


@dataclass(frozen=True, slots=True)
class Lesson:
    """One feature the server refused: its name, the profile without it, and what it said."""

    feature: str
    profile: ModelProfile
    message: str


def _messages(body: Body) -> list[Mapping[str, Any]]:
    raw = body.get("messages")
    return cast(list[Mapping[str, Any]], raw) if isinstance(raw, list) else []


def _tools(body: Body) -> list[Mapping[str, Any]]:
    raw = body.get("tools")
    return cast(list[Mapping[str, Any]], raw) if isinstance(raw, list) else []


def _null_content(body: Body) -> bool:
    return any(m.get("role") == "assistant" and m.get("content") is None for m in _messages(body))


def _strict(body: Body) -> bool:
    in_tools = any(t.get("function", {}).get("strict") for t in _tools(body))
    spec = body.get("response_format", {})
    in_output = isinstance(spec, Mapping) and bool(
        cast(Mapping[str, Any], spec).get("json_schema", {}).get("strict")
    )
    return in_tools or in_output


def _format_type(body: Body) -> str | None:
    spec = body.get("response_format")
    return str(cast(Mapping[str, Any], spec).get("type")) if isinstance(spec, Mapping) else None


def _next_format(profile: ModelProfile) -> ModelProfile:
    steps = {"json_schema": "json_object_schema", "json_object_schema": "json_object"}
    return profile.replace(response_format=steps.get(profile.response_format, "none"))


def _other_cap(profile: ModelProfile) -> ModelProfile:
    field = "max_tokens" if profile.max_tokens_field == "max_completion_tokens" else None
    return profile.replace(max_tokens_field=field or "max_completion_tokens")


@dataclass(frozen=True, slots=True)
class _Feature:
    name: str
    used: Callable[[Body], bool]
    named: str  # a pattern, matched ignoring case
    downgrade: Callable[[ModelProfile], ModelProfile]
    needs_rejection: bool = True


def _cap_used(body: Body) -> bool:
    return "max_tokens" in body or "max_completion_tokens" in body


# Most specific first: "tool_choice 'required'" is about `required`, not tool_choice itself.
_FEATURES = (
    _Feature(
        "tools",
        lambda body: bool(_tools(body)),
        (
            r"does not support tools|tools? (are |is )?not supported|"
            r"(function|tool)[ _-]?call(ing|s)? (is |are )?not (supported|enabled|available)|"
            r"enable-auto-tool-choice|tool[ _-]?call[ _-]?parser|requires --jinja|\btools\b.{0,40}"
            r"(not (supported|allowed|permitted)|unsupported|extra)"
        ),
        lambda p: p.replace(tool_mode="prompted"),
        needs_rejection=False,
    ),
    _Feature(
        "tool_choice_required",
        lambda body: body.get("tool_choice") == "required",
        (
            r"(tool_choice|tool choice).{0,80}required|required.{0,80}(tool_choice|tool choice)|"
            r"must either be a named tool"
        ),
        lambda p: p.replace(tool_choice_required=False),
    ),
    _Feature(
        "tool_choice",
        lambda body: "tool_choice" in body,
        r"tool_choice|tool choice",
        lambda p: p.replace(tool_choice=False),
    ),
    _Feature(
        "parallel_tool_calls",
        lambda body: "parallel_tool_calls" in body,
        r"parallel_tool_calls",
        lambda p: p.replace(parallel_tool_calls=False),
    ),
    _Feature(
        "stream_options",
        lambda body: "stream_options" in body,
        r"stream_options|stream options|include_usage",
        lambda p: p.replace(stream_usage=False),
    ),
    _Feature("strict", _strict, r"\bstrict\b", lambda p: p.replace(strict_tools=False)),
    _Feature(
        "response_format",
        lambda body: _format_type(body) is not None,
        r"response_format|response format|json_schema|json_object|json schema",
        _next_format,
    ),
    _Feature(
        "max_tokens_field",
        _cap_used,
        r"max_completion_tokens|max_tokens",
        _other_cap,
    ),
    _Feature(
        "null_content",
        _null_content,
        (
            r"content.{0,60}(null|none|string|str\b)|(null|none|nonetype).{0,60}content|"
            r"nonetype|none is not"
        ),
        lambda p: p.replace(null_content_with_tool_calls=False),
    ),
)


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.I) is not None


def error_text(error: APIStatusError) -> str:
    """What the server said: the error's message and, when the body has one, its ``param``."""
    parts = [error.message]
    body: Any = error.body
    detail: Any = cast(Mapping[str, Any], body).get("error") if isinstance(body, Mapping) else None
    if isinstance(detail, Mapping) and cast(Mapping[str, Any], detail).get("param"):
        parts.append(f"param: {cast(Mapping[str, Any], detail)['param']}")
    return " ".join(parts)


_SILENT_500 = r"\s*(\d{3})?\s*(\(empty body\))?\s*"


def _crash(error: APIStatusError, body: Body, profile: ModelProfile) -> Lesson | None:
    """A 500 that says nothing, to a request forcing a tool call: llama-cpp-python's
    function-calling handler fails an assert on ``tool_choice: "required"`` and answers so."""
    if error.status_code != 500 or not re.fullmatch(_SILENT_500, error.message):
        return None
    if body.get("tool_choice") != "required" or not profile.tool_choice_required:
        return None
    changed = profile.replace(tool_choice_required=False)
    return Lesson("tool_choice_required", changed, "an empty 500 to tool_choice 'required'")


def lesson(error: APIStatusError, body: Body, profile: ModelProfile) -> Lesson | None:
    """The profile without the feature this error refused, or None when it names none we used."""
    if error.status_code not in _LEARNABLE_STATUSES:
        return None
    crashed = _crash(error, body, profile)
    if crashed is not None:
        return crashed
    text = error_text(error)
    for feature in _FEATURES:
        if not feature.used(body) or not _found(feature.named, text):
            continue
        if feature.needs_rejection and not _found(_REJECTS, text):
            continue
        if feature.name == "max_tokens_field" and _found(_VALUE_PROBLEM, text):
            continue
        learned = feature.downgrade(profile)
        if learned != profile:
            return Lesson(feature.name, learned, text[:300])
    return None


def about_the_request(error: APIStatusError) -> bool:
    """A 500/501 whose message says the request itself failed (validation, template, a
    server-side exception on its content): the same request would fail again."""
    if error.status_code not in (500, 501):
        return False
    return error.status_code == 501 or _found(_REQUEST_FAULT, error.message)
