"""`ModelSettings`: the sampling and request parameters of a chat-completions call."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import SettingsError

__all__ = ["ModelSettings", "ToolChoice"]

ToolChoice = Literal["none", "auto", "required"] | str
"""``"none"``, ``"auto"``, ``"required"``, or the name of one tool to force."""

_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "top_logprobs": (0, 20),
    "max_completion_tokens": (1, 2**31 - 1),
    "timeout": (0.0, 86400.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    """Request parameters. Every field is optional; None means "not sent".

    Settings merge: `agent settings | run settings`, the right side wins field by field.
    Out-of-range values raise `SettingsError` when the settings are built, naming the range.

    `response_format`, when set, is sent verbatim (for example ``{"type": "json_object"}`` with a
    `str` output); normally the agent derives it from its output type. `timeout` is the overall
    deadline of one request in seconds (connect, headers and the whole body or stream).
    """

    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | Sequence[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    logit_bias: Mapping[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: Mapping[str, Any] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    store: bool | None = None
    metadata: Mapping[str, str] | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    timeout: float | None = None
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not (low <= value <= high):
                raise SettingsError(f"{name}={value!r} is outside the allowed range {low}..{high}")
        if isinstance(self.stop, str | None):
            pass
        elif len(self.stop) > 4:
            raise SettingsError(f"stop has {len(self.stop)} sequences; the API allows at most 4")
        for token, bias in (self.logit_bias or {}).items():
            if not -100 <= bias <= 100:
                raise SettingsError(
                    f"logit_bias[{token!r}]={bias!r} is outside the allowed range -100..100"
                )
        if self.top_logprobs is not None and not self.logprobs:
            raise SettingsError("top_logprobs needs logprobs=True")

    def merge(self, other: ModelSettings | None) -> ModelSettings:
        """These settings with every field that `other` sets taken from `other`."""
        if other is None:
            return self
        changes = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) is not None
        }
        return dataclasses.replace(self, **changes) if changes else self

    def __or__(self, other: ModelSettings | None) -> ModelSettings:
        return self.merge(other)
