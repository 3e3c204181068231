"""Turn an error answer (a status and a body, or an error object in a stream) into a typed error.

Handles OpenAI's ``{"error": {message, type, param, code}}``, OpenRouter's ``{"error": {code:
<int>, message, metadata: {raw, provider_name, reasons, flagged_input}}}``, Azure's numeric-string
codes, plain-text and HTML bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from .._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    InsufficientCreditsError,
    InternalServerError,
    ModerationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["error_fields", "status_error"]

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
_CONTEXT_RE = re.compile(r"context[_ ]length|maximum context|context window|too many tokens", re.I)
_TAG_RE = re.compile(r"<[^>]+>")
_MAX_MESSAGE = 500


def error_fields(body: Any) -> tuple[str | None, str | None, str | None, Mapping[str, Any]]:
    """(message, code, type, metadata) of an error body; Nones where the body has none."""
    error: Any = cast(Mapping[str, Any], body).get("error") if isinstance(body, Mapping) else None
    if isinstance(error, str):
        return error, None, None, {}
    if not isinstance(error, Mapping):
        if isinstance(body, Mapping) and isinstance(cast(Any, body).get("message"), str):
            error = cast(Any, body)
        else:
            return None, None, None, {}
    fields = cast(Mapping[str, Any], error)
    message, code, kind = fields.get("message"), fields.get("code"), fields.get("type")
    metadata: Any = fields.get("metadata")
    return (
        str(message) if message is not None else None,
        str(code) if code is not None else None,
        str(kind) if kind is not None else None,
        cast(Mapping[str, Any], metadata) if isinstance(metadata, Mapping) else {},
    )


def _text_of(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        text = " ".join(_TAG_RE.sub(" ", body).split())
        return text[:_MAX_MESSAGE] or "(empty body)"
    return json.dumps(body)[:_MAX_MESSAGE]


def _upstream_message(metadata: Mapping[str, Any]) -> str | None:
    """OpenRouter wraps the upstream provider's error in ``metadata.raw`` (a JSON string)."""
    raw = metadata.get("raw")
    if not isinstance(raw, str):
        return None
    try:
        inner = json.loads(raw)
    except (ValueError, RecursionError):
        return raw[:_MAX_MESSAGE]
    message, _, _, _ = error_fields(inner)
    return message


def _error_class(
    status: int, code: str | None, kind: str | None, text: str
) -> type[APIStatusError]:
    if code in _QUOTA_CODES or kind in _QUOTA_CODES:
        return InsufficientCreditsError
    if code == "context_length_exceeded" or (status == 400 and _CONTEXT_RE.search(text)):
        return ContextLengthError
    if status == 403 and ("moderation" in text.lower() or "flagged" in text.lower()):
        return ModerationError
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, BadRequestError if 400 <= status < 500 else APIStatusError)


def status_error(
    status_code: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    retry_after: float | None = None,
) -> APIStatusError:
    """The typed error for an error answer. `body` is parsed JSON, or text/bytes when not JSON."""
    headers = headers or {}
    message, code, kind, metadata = error_fields(body)
    upstream = _upstream_message(metadata)
    if message is None:
        message = _text_of(body)
    if upstream and upstream not in message:
        message = f"{message}: {upstream}"
    if metadata.get("reasons") or metadata.get("flagged_input"):
        reasons: Any = metadata.get("reasons") or []
        listed = cast(list[Any], reasons) if isinstance(reasons, list) else [reasons]
        message = f"{message} (flagged: {', '.join(map(str, listed))})"
    cls = _error_class(status_code, code, kind, f"{message} {code or ''} {kind or ''}")
    request_id = headers.get("x-request-id") or headers.get("request-id")
    text = f"{status_code} {message}" + (f" [code={code}]" if code else "")
    return cls(
        text,
        status_code=status_code,
        code=code or kind,
        body=body,
        request_id=request_id,
        headers=headers,
        retry_after=retry_after,
    )
