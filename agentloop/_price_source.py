"""Prices from the ``genai-prices`` package, when it is installed (the ``prices`` extra).

The package is a maintained table of providers' prices and context windows, updated with each of
its releases. It is asked once per (provider, model) and only for a provider it knows: a model
name alone is never matched across providers, since a self-hosted ``llama3`` costs neither
nothing nor Groq's rate. Its own updater, which fetches prices over the network, is never
started here; the table used is the one its installed release ships.

The figures taken are the standard ones in force now:

- a price tiered by prompt size (Gemini's and Claude's above 200K tokens) is taken at its base
  rate, the one below the first tier;
- a discount that depends on the hour of the day (DeepSeek's off-peak rate) is not applied: of
  the prices that take turns through the day, the higher is kept, so that a cost or a budget
  check never counts low;
- a price from a start date on is the one in force when first looked up;
- variants chosen per request (batch processing, a priority or flex service tier) are not used.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from ._log import get_logger

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice, PriceCalculation, TieredPrices

__all__ = ["PROVIDERS", "Quote", "quote"]

PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "openrouter": "openrouter",
    "anthropic": "anthropic",
    "gemini": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "together": "together",
    "fireworks": "fireworks",
    "azure": "azure",
}
"""agentloop's provider ids (a model's ``system``) to the package's. A provider not here (a local
server, an unknown OpenAI-compatible one) is priced from the built-in catalog only."""

_log = get_logger()


class Quote(NamedTuple):
    """The package's figures for one model: USD per million tokens, and its context window."""

    input: float
    output: float
    cached_input: float | None
    context: int | None


def quote(name: str, system: str | None) -> Quote | None:
    """The package's prices for model `name` at provider `system`, or None.

    None when the provider is not one the package is asked about, the package is not installed,
    or it has no input and output price for the model.
    """
    provider = PROVIDERS.get(system) if system is not None else None
    if provider is None:
        return None
    try:
        import genai_prices
    except ImportError:
        return None
    usage = genai_prices.Usage(input_tokens=0, output_tokens=0)
    now = datetime.now(tz=UTC)
    try:
        calc = genai_prices.calc_price(
            usage, name, provider_id=provider, genai_request_timestamp=now
        )
    except LookupError:
        return None
    except Exception as exc:  # a failing price table must not stop a run: use the catalog
        _log.warning("price_lookup_failed", model=name, provider=provider, error=repr(exc))
        return None
    return _from_calculation(calc)


def _from_calculation(calc: PriceCalculation) -> Quote | None:
    prices = [calc.model_price, *_daily_prices(calc)]
    input_rate = _highest(p.input_mtok for p in prices)
    output_rate = _highest(p.output_mtok for p in prices)
    if input_rate is None or output_rate is None:
        return None
    cached = _highest(p.cache_read_mtok for p in prices)
    return Quote(input_rate, output_rate, cached, calc.model.context_window)


def _daily_prices(calc: PriceCalculation) -> list[ModelPrice]:
    """The model's prices that hold at some hours of each day (see the module's docstring)."""
    from genai_prices.types import TimeOfDateConstraint

    conditional = calc.model.prices
    if not isinstance(conditional, list):
        return []
    return [c.prices for c in conditional if isinstance(c.constraint, TimeOfDateConstraint)]


def _highest(prices: Iterable[Decimal | TieredPrices | None]) -> float | None:
    known = [rate for price in prices if (rate := _rate(price)) is not None]
    return max(known) if known else None


def _rate(price: Decimal | TieredPrices | None) -> float | None:
    """A price as a float; a tiered one at its base rate."""
    if price is None:
        return None
    return float(price if isinstance(price, Decimal) else price.base)
