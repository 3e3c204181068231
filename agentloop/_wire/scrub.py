"""Taking the key out of what a server sent back: error messages, bodies and headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from .._errors import APIError, APIStatusError
from .transport import scrub

__all__ = ["scrub_error"]


def scrub_error(error: APIError, secret: str) -> None:
    """Take the key out of an error's message, body and headers (a server may echo what it was
    sent, in an error body, a stream's error event or a response header)."""
    if not secret:
        return
    if secret in error.message:
        error.message = scrub(error.message, [secret])
        error.args = (error.message,)
    if isinstance(error, APIStatusError):
        error.body = _scrub_value(error.body, secret)
        error.headers = _scrub_value(error.headers, secret)


def _scrub_value(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***") if secret in value else value
    if isinstance(value, bytes):
        return value.replace(secret.encode(), b"***")
    if isinstance(value, Mapping):
        items = cast("Mapping[Any, Any]", value).items()
        return {_scrub_value(k, secret): _scrub_value(v, secret) for k, v in items}
    if isinstance(value, list):
        return [_scrub_value(item, secret) for item in cast("list[Any]", value)]
    return value
