"""Where prices come from: `register_model`, then genai-prices for the model's provider, then the
built-in catalog; cached input tokens at the cached rate; unknown is None, never zero."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from agentloop import (
    Agent,
    ModelInfo,
    RequestUsage,
    _price_source,
    _prices,
    lookup_model,
    register_model,
)
from agentloop._prices import CostMeter
from agentloop.testing import FakeServer, reply

genai_prices = pytest.importorskip("genai_prices")

SEED = "openai/gpt-3.5-turbo-0613"  # OpenRouter's slug: a 4K window at $1 / $2 per million
MILLION = RequestUsage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.fixture(autouse=True)
def _fresh_catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No entry registered by another test, and nothing resolved before this test's patches."""
    monkeypatch.setattr(_prices, "_overrides", {})
    lookup_model.cache_clear()
    yield
    lookup_model.cache_clear()


@pytest.fixture(params=["package", "catalog only"])
def source(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with genai-prices and again as if it were not installed."""
    if request.param == "catalog only":
        monkeypatch.setitem(sys.modules, "genai_prices", None)  # `import` raises ImportError
    return request.param


def test_the_seed_model_at_openrouter_is_one_and_two_dollars(source: str) -> None:
    info = lookup_model(SEED, "openrouter")
    assert info is not None
    assert (info.input, info.output) == (1.0, 2.0)
    assert info.context is not None and 4000 <= info.context <= 4096
    assert info.cost(MILLION) == 3.0
    meter = CostMeter()
    assert meter.add(SEED, MILLION, provider="openrouter") == 3.0
    assert meter.total == 3.0
    assert meter.estimate(SEED, 1_000_000, 0, provider="openrouter") == 1.0


def test_an_unknown_model_has_no_price_never_zero(source: str) -> None:
    for provider in ("openai", "openrouter", "anthropic", "openai-compatible", None):
        assert lookup_model("no-such-model-xyz", provider) is None
        meter = CostMeter()
        meter.add("no-such-model-xyz", RequestUsage(100, 10), provider=provider)
        assert meter.total is None
        assert meter.estimate("no-such-model-xyz", 100, 10, provider=provider) is None


def test_the_provider_decides_the_price() -> None:
    at_openai = lookup_model("gpt-3.5-turbo-0613", "openai")
    at_openrouter = lookup_model(SEED, "openrouter")
    assert at_openai is not None and at_openrouter is not None
    assert (at_openai.input, at_openai.output) == (1.5, 2.0)  # OpenAI's own list price
    assert (at_openrouter.input, at_openrouter.output) == (1.0, 2.0)


def test_what_only_the_catalog_knows_is_kept() -> None:
    info = lookup_model("gpt-4o-2024-08-06", "openai")
    assert info is not None and info.images and info.max_output == 16_384
    assert (info.input, info.output, info.cached_input) == (2.5, 10.0, 1.25)


def test_register_model_overrides_the_package_and_the_catalog(source: str) -> None:
    assert lookup_model(SEED, "openrouter") is not None  # resolved (and cached) first
    register_model(ModelInfo(SEED, context=4096, input=7.0, output=9.0))
    info = lookup_model(SEED, "openrouter")
    assert info is not None and (info.input, info.output) == (7.0, 9.0)


def test_cached_input_tokens_are_priced_at_the_cached_rate(source: str) -> None:
    usage = RequestUsage(input_tokens=10_000, output_tokens=1_000, cached_tokens=4_000)
    info = lookup_model("gpt-4o", "openai")
    assert info is not None and info.cached_input == 1.25
    # 6,000 fresh at $2.50, 4,000 cached at $1.25, 1,000 out at $10 (per million)
    assert info.cost(usage) == 0.03
    meter = CostMeter()
    meter.add("gpt-4o", usage, provider="openai")
    assert meter.total == 0.03


@pytest.mark.anyio
async def test_a_run_prices_the_cached_tokens_the_server_reports() -> None:
    usage = {
        "prompt_tokens": 10_000,
        "completion_tokens": 1_000,
        "total_tokens": 11_000,
        "prompt_tokens_details": {"cached_tokens": 4_000},
    }
    with FakeServer([reply("hi", usage=usage)], model_name="gpt-4o-mini") as server:
        result = await Agent(server.model()).run("hi")
    # 6,000 at $0.15, 4,000 at $0.075, 1,000 at $0.60 per million
    assert result.cost == pytest.approx(0.0018, rel=1e-12)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """The package's look-ups, recorded."""
    calls: list[tuple[str, str | None]] = []
    real = genai_prices.calc_price

    def spy(usage: Any, model_ref: str, **options: Any) -> Any:
        calls.append((model_ref, options.get("provider_id")))
        return real(usage, model_ref, **options)

    monkeypatch.setattr(genai_prices, "calc_price", spy)
    return calls


def test_the_package_is_not_asked_without_a_known_provider(
    asked: list[tuple[str, str | None]],
) -> None:
    for provider in (None, "openai-compatible", "ollama", "vllm", "lmstudio", "function"):
        info = lookup_model("gpt-4o", provider)
        assert info is not None and info.input == 2.5  # the built-in catalog
        assert lookup_model("llama3", provider) is None
    assert asked == []
    assert lookup_model("gemini-2.5-flash", "gemini") is not None
    assert asked == [("gemini-2.5-flash", "google")]


def test_each_model_is_resolved_once(asked: list[tuple[str, str | None]]) -> None:
    meter = CostMeter()
    for _ in range(50):
        meter.add("gpt-4o-mini", RequestUsage(1_000, 100), provider="openai")
        meter.estimate("gpt-4o-mini", 1_000, 100, provider="openai")
    assert asked == [("gpt-4o-mini", "openai")]
    assert meter.total == pytest.approx(50 * (1_000 * 0.15 + 100 * 0.6) / 1e6)


def test_every_mapped_provider_resolves_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2
    from genai_prices.update_prices import UpdatePrices

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("genai-prices was asked to fetch prices")

    monkeypatch.setattr(httpx2, "get", refuse)
    monkeypatch.setattr(UpdatePrices, "start", refuse)
    for provider in _price_source.PROVIDERS:
        lookup_model("gpt-4o", provider)
        lookup_model("no-such-model-xyz", provider)


def test_a_failing_package_falls_back_to_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("bad price table")

    monkeypatch.setattr(genai_prices, "calc_price", broken)
    info = lookup_model(SEED, "openrouter")
    assert info is not None and (info.input, info.output, info.context) == (1.0, 2.0, 4095)


def _calculation(prices: Any) -> Any:
    """A genai-prices calculation for a made-up model with `prices`, as of now."""
    from genai_prices.types import ClauseEquals, Provider
    from genai_prices.types import ModelInfo as PackageModel

    model = PackageModel(id="m", match=ClauseEquals(equals="m"), context_window=1000, prices=prices)
    provider = Provider(id="p", name="P", api_pattern="p", models=[model])
    usage = genai_prices.Usage(input_tokens=0, output_tokens=0)
    return model.calc_price(usage, provider, genai_request_timestamp=datetime.now(tz=UTC))


def test_a_tiered_price_is_taken_at_its_base_rate() -> None:
    from genai_prices.types import ModelPrice, Tier, TieredPrices

    tiered = TieredPrices(base=Decimal("1.25"), tiers=[Tier(start=200_000, price=Decimal("2.5"))])
    prices = ModelPrice(input_mtok=tiered, output_mtok=Decimal(10), cache_read_mtok=None)
    quote = _price_source._from_calculation(_calculation(prices))
    assert quote == _price_source.Quote(1.25, 10.0, None, 1000)


def test_an_hourly_discount_is_not_applied() -> None:
    from genai_prices.types import ConditionalPrice, ModelPrice, TimeOfDateConstraint

    off_peak = ModelPrice(input_mtok=Decimal("0.1"), output_mtok=Decimal("0.4"))
    peak = ModelPrice(
        input_mtok=Decimal("0.2"), output_mtok=Decimal("0.8"), cache_read_mtok=Decimal("0.05")
    )
    hours = TimeOfDateConstraint(start_time=time(0, 0, tzinfo=UTC), end_time=time(0, 1, tzinfo=UTC))
    prices = [ConditionalPrice(prices=off_peak), ConditionalPrice(constraint=hours, prices=peak)]
    quote = _price_source._from_calculation(_calculation(prices))
    assert quote == _price_source.Quote(0.2, 0.8, 0.05, 1000)  # at any hour


def test_a_model_the_package_cannot_price_comes_from_the_catalog() -> None:
    from genai_prices.types import ModelPrice

    prices = ModelPrice(input_mtok=Decimal(1))  # no output price
    assert _price_source._from_calculation(_calculation(prices)) is None
