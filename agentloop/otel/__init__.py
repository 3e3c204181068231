"""OpenTelemetry traces and metrics for every agent, in the GenAI semantic conventions.

::

    from agentloop.otel import instrument

    instrumentation = instrument()          # the global tracer and meter providers
    ...                                     # every run: invoke_agent > chat, execute_tool
    instrumentation.uninstrument()

Needs the ``otel`` extra (``pip install 'agentloop[otel]'``: the OpenTelemetry API and the
semantic conventions); the SDK and an exporter are the application's choice. Nothing of
OpenTelemetry is imported by agentloop until this module is. Prompts, tool arguments, tool
results and answers are recorded only with ``capture_content=True``, each cut at
`max_content_chars`; API keys and headers never are.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .. import _telemetry
from .._errors import UsageError

try:
    from opentelemetry import metrics, trace

    from ._spans import COST_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS, OTelTelemetry
except ImportError as _missing:  # pragma: no cover - the extra is installed where tests run
    raise UsageError(
        f"agentloop.otel needs OpenTelemetry: pip install 'agentloop[otel]' ({_missing})"
    ) from None

__all__ = ["COST_BUCKETS", "DURATION_BUCKETS", "TOKEN_BUCKETS", "Instrumentation", "instrument"]

SCOPE = "agentloop"


class Instrumentation:
    """What `instrument` turned on; `uninstrument()` (or leaving a ``with`` block) turns it off."""

    def __init__(self, installed: object) -> None:
        self._installed = installed  # the telemetry object `instrument` made active

    @property
    def active(self) -> bool:
        """Whether it is the instrumentation in use."""
        return _telemetry.active is self._installed

    def uninstrument(self) -> None:
        """Turn it off (if it is still the instrumentation in use)."""
        if _telemetry.active is self._installed:
            _telemetry.active = None

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstrument()


def instrument(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    *,
    capture_content: bool = False,
    max_content_chars: int = 8192,
) -> Instrumentation:
    """Trace and measure every agent's runs from now on, in every task and thread.

    `tracer_provider` and `meter_provider` default to OpenTelemetry's global ones. A second
    call replaces the first instrumentation.
    """
    if max_content_chars < 1:
        raise UsageError("max_content_chars must be at least 1")
    from .. import __version__

    tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
    telemetry = OTelTelemetry(tracer, meter, capture_content=capture_content, cap=max_content_chars)
    _telemetry.active = telemetry
    return Instrumentation(telemetry)
