"""The model catalog: context windows, output caps and prices, and the cost of a run.

A model's entry comes from, in order: `register_model` (the user's own entries), the
``genai-prices`` package when it is installed and the model's provider is one it covers
(`_price_source`), then the built-in catalog ``_catalog.json`` (easy to update by hand). Each
(model, provider) is resolved once and kept, so pricing a request is a few multiplications.

A cost the provider reports (OpenRouter's ``usage.cost``) always wins over the catalog; a
request that has neither makes the run's cost unknown (None), never a silent zero. A request
whose usage the server did not report (`RequestUsage.reported` False) has no catalog cost,
unless the model's prices are zero (a local model). Cached input tokens are priced at the
cached rate when the entry has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from ._messages import RequestUsage
from ._price_source import Quote, quote

__all__ = ["CostMeter", "ModelInfo", "lookup_model", "register_model"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalog entry. Prices are USD per million tokens."""

    name: str
    context: int | None = None
    max_output: int | None = None
    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    images: bool = False
    """The model takes images (a tool's images are shown to it; see `ToolReturn`)."""

    def cost(self, usage: RequestUsage) -> float | None:
        """The catalog price of one request, or None when this entry has no prices."""
        if self.input is None or self.output is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = self.cached_input if self.cached_input is not None else self.input
        total = (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        )
        return total / 1_000_000


_overrides: dict[str, ModelInfo] = {}


@cache
def _builtin() -> dict[str, ModelInfo]:
    from importlib import resources

    text = resources.files("agentloop").joinpath("_catalog.json").read_text("utf-8")
    data = json.loads(text)
    return {name: ModelInfo(name, **fields) for name, fields in data.items() if name[0] != "_"}


def register_model(info: ModelInfo) -> None:
    """Add a catalog entry or replace one (built-in entries included)."""
    _overrides[info.name] = info
    lookup_model.cache_clear()


@cache
def lookup_model(name: str, provider: str | None = None) -> ModelInfo | None:
    """The entry for model `name` served by `provider` (a model's ``system``), or None.

    An entry from `register_model` wins; then the ``genai-prices`` package's prices for that
    provider (with the built-in catalog's output cap and image flag); then the built-in
    catalog. Names match exactly, then without a provider prefix, then by the longest dated
    base: ``openai/gpt-4o`` finds ``gpt-4o``; ``gpt-4o-2024-08-06`` finds ``gpt-4o`` (but never
    ``gpt-4o-mini``, because the rest must start with a dash and a digit). Without a provider
    the package is not asked.
    """
    override = _match(name, _overrides)
    if override is not None:
        return override
    builtin = _match(name, _builtin())
    found = quote(name, provider)
    return builtin if found is None else _from_quote(name, found, builtin)


def _from_quote(name: str, found: Quote, builtin: ModelInfo | None) -> ModelInfo:
    """The package's prices and window, with what only the catalog knows (output cap, images)."""
    known = builtin if builtin is not None else ModelInfo(name)
    return ModelInfo(
        name,
        context=found.context if found.context is not None else known.context,
        max_output=known.max_output,
        input=found.input,
        output=found.output,
        cached_input=found.cached_input,
        images=known.images,
    )


def _match(name: str, table: dict[str, ModelInfo]) -> ModelInfo | None:
    candidates = [name]
    if "/" in name:
        candidates.append(name.rsplit("/", 1)[1])
    for candidate in candidates:
        if candidate in table:
            return table[candidate]
    for candidate in candidates:
        best = max(
            (
                key
                for key in table
                if candidate.startswith(key + "-")
                and candidate[len(key) + 1 : len(key) + 2].isdigit()
            ),
            key=len,
            default=None,
        )
        if best is not None:
            return table[best]
    return None


@dataclass(slots=True)
class CostMeter:
    """Adds up the cost of a run, request by request; `total` is None once any is unknown."""

    total: float | None = 0.0

    def add(
        self, model_name: str, usage: RequestUsage, provider: str | None = None
    ) -> float | None:
        """Count one request of `model_name` at `provider` (the model's ``system``); its cost."""
        cost = usage.cost
        if cost is None:
            info = lookup_model(model_name, provider)
            # No usage reported: pricing its zeros would lie, unless the model is free.
            usable = info is not None and (usage.reported or _free(info))
            cost = info.cost(usage) if info is not None and usable else None
        if self.total is not None:
            self.total = None if cost is None else self.total + cost
        return cost

    def add_cost(self, cost: float | None) -> None:
        """A cost already known (a sub-run's); None makes the total unknown."""
        if self.total is not None:
            self.total = None if cost is None else self.total + cost

    def estimate(
        self, model_name: str, input_tokens: int, output_tokens: int, provider: str | None = None
    ) -> float | None:
        """The catalog price of a request not yet sent, for the budget check."""
        info = lookup_model(model_name, provider)
        if info is None:
            return None
        return info.cost(RequestUsage(input_tokens, output_tokens))


def _free(info: ModelInfo) -> bool:
    return info.input == 0 and info.output == 0 and not info.cached_input
