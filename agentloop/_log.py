"""The library's logger: structlog events, never a global configuration.

When the application has configured structlog, events go through its pipeline. When it has not,
they go to the standard library's ``logging.getLogger("agentloop")``, which is silent until the
application turns it on: a library must not print on its own. Keys and Authorization headers are
never passed to a log call anywhere in agentloop.

structlog is never imported here: an application that configured it has imported it, so it is
looked up in ``sys.modules`` at each call. That keeps ``import agentloop`` about 60 ms faster
(structlog pulls in ``structlog.stdlib`` and asyncio) for everyone who does not use it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["get_logger"]

_stdlib = logging.getLogger("agentloop")
_stdlib.addHandler(logging.NullHandler())  # no "last resort" printing of warnings


class _Logger:
    """Resolves, at each call, whether structlog is configured; binds like a structlog logger."""

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        self._context = context or {}

    def bind(self, **values: Any) -> _Logger:
        return _Logger({**self._context, **values})

    def _emit(self, level: int, method: str, event: str, values: dict[str, Any]) -> None:
        structlog: Any = sys.modules.get("structlog")
        if structlog is not None and structlog.is_configured():
            getattr(structlog.get_logger("agentloop"), method)(event, **self._context, **values)
        elif _stdlib.isEnabledFor(level):
            fields = " ".join(f"{k}={v!r}" for k, v in {**self._context, **values}.items())
            _stdlib.log(level, "%s %s", event, fields)

    def debug(self, event: str, **values: Any) -> None:
        self._emit(logging.DEBUG, "debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._emit(logging.INFO, "info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._emit(logging.WARNING, "warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._emit(logging.ERROR, "error", event, values)


def get_logger() -> _Logger:
    return _Logger()
