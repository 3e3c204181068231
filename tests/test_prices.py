"""Prices: the catalog, costs from it and from the provider, unknown usage and free models."""

from __future__ import annotations

import pytest
from support.unreported import silent

from agentloop import Agent, Limits, ModelInfo, UsageError, register_model
from agentloop.testing import FakeServer, reply

pytestmark = pytest.mark.anyio


async def test_cost_from_catalog_and_from_provider() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    with FakeServer([reply("hi", usage=usage)], model_name="openai/gpt-3.5-turbo-0613") as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    with FakeServer(
        [reply("hi", usage={**usage, "cost": 0.042})], model_name="unknown-x"
    ) as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost == pytest.approx(0.042)
    with FakeServer([reply("hi", usage=usage)], model_name="unknown-x") as server:
        result = await Agent(server.model()).run("hi")
    assert result.cost is None  # unknown, never a silent zero


@pytest.mark.anyio
async def test_a_priced_model_without_usage_has_an_unknown_cost() -> None:
    with FakeServer([silent("hi")], model_name="gpt-4o-mini") as server:
        result = await Agent(server.model()).run("hello")
    assert result.cost is None  # not $0: nothing was reported to price
    with FakeServer([silent("hi")], model_name="gpt-4o-mini") as server:
        agent = Agent(server.model(), limits=Limits(max_cost=1.0))
        with pytest.raises(UsageError, match="reported no usage"):
            await agent.run("hello")


@pytest.mark.anyio
async def test_a_free_model_without_usage_still_costs_nothing() -> None:
    register_model(ModelInfo("test-free-local-model", context=4096, input=0.0, output=0.0))
    with FakeServer([silent("hi")], model_name="test-free-local-model") as server:
        result = await Agent(server.model(), limits=Limits(max_cost=0.01)).run("hello")
    assert result.cost == 0.0


def test_catalog_knows_the_seed_model_and_common_openrouter_slugs() -> None:
    from agentloop import lookup_model

    seed = lookup_model("openai/gpt-3.5-turbo-0613")
    assert seed is not None and (seed.context, seed.input, seed.output) == (4095, 1.0, 2.0)
    assert lookup_model("gpt-3.5-turbo-0613").context == 4096  # type: ignore[union-attr]
    for slug in ("anthropic/claude-sonnet-4", "google/gemini-2.5-flash", "openai/gpt-4o-mini"):
        info = lookup_model(slug)
        assert info is not None and info.context and info.input is not None
