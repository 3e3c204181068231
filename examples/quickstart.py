"""Quickstart: a task agent with two tools and a structured result.

    python examples/quickstart.py

With OPENROUTER_API_KEY or OPENAI_API_KEY set, it runs against that provider (override the model
with AGENTLOOP_MODEL, e.g. "openrouter:openai/gpt-4o-mini"). Without a key it runs offline
against agentloop's built-in fake server, whose answers are scripted.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, Field

from agentloop import Agent, Limits, RunResult, ToolCallFinished, tool
from agentloop.testing import FakeServer, Reply, reply, tool_call

RATES_TO_EUR = {"USD": 0.92, "GBP": 1.17, "JPY": 0.0061, "EUR": 1.0}
WEATHER = {"lisbon": (22.0, "sunny"), "oslo": (-3.0, "snow"), "tokyo": (14.0, "cloudy")}


@tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather in a city.

    Args:
        city: the city name, e.g. "Lisbon".
    """
    degrees, sky = WEATHER.get(city.lower(), (18.0, "unknown"))
    return {"city": city, "celsius": degrees, "sky": sky}


@tool
def convert_currency(amount: float, currency: str) -> float:
    """Convert an amount of money to euros.

    Args:
        amount: how much money.
        currency: ISO code of the currency, e.g. "USD".
    """
    return round(amount * RATES_TO_EUR[currency.upper()], 2)


class TripBrief(BaseModel):
    """A short brief for a trip."""

    city: str
    celsius: float
    sky: str
    budget_eur: float = Field(description="the budget converted to euros")
    packing: list[str] = Field(description="three things to pack")


PROMPT = "I'm going to Lisbon with 500 USD. Check the weather, convert my budget, and brief me."


def offline_script() -> list[Any]:
    """The scripted model: call both tools, then answer from their results."""

    def answer(body: dict[str, Any]) -> Reply:
        results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        weather, budget = json.loads(results[0]), float(results[1])
        packing = ["sunglasses", "light jacket", "walking shoes"]
        return reply({**weather, "budget_eur": budget, "packing": packing})

    calls = (
        ("get_weather", {"city": "Lisbon"}),
        ("convert_currency", {"amount": 500, "currency": "USD"}),
    )
    return [tool_call(*calls), answer]


def choose_model() -> tuple[Any, FakeServer | None, str]:
    chosen = os.environ.get("AGENTLOOP_MODEL")
    if os.environ.get("OPENROUTER_API_KEY"):
        name = chosen or "openrouter:openai/gpt-4o-mini"
        return name, None, f"OpenRouter, model {name}"
    if os.environ.get("OPENAI_API_KEY"):
        name = chosen or "openai:gpt-4o-mini"
        return name, None, f"OpenAI, model {name}"
    server = FakeServer(offline_script(), model_name="gpt-4o-mini")
    note = "OFFLINE: agentloop's fake server; the model's answers are SCRIPTED, the tools are real"
    return server.model(), server, note


async def main() -> RunResult[TripBrief]:
    model, server, where = choose_model()
    print(f"== agentloop quickstart ({where})\n")
    agent = Agent(
        model,
        instructions="You plan trips. Use the tools; never guess weather or exchange rates.",
        tools=[get_weather, convert_currency],
        output_type=TripBrief,
        limits=Limits(max_requests=8, max_cost=0.05 if server is None else None),
    )
    print(f"user: {PROMPT}")
    async with agent.run_stream(PROMPT) as stream:
        async for event in stream:
            if isinstance(event, ToolCallFinished):
                print(f"  tool {event.name} -> {event.result}  ({event.duration * 1000:.1f} ms)")
    result = stream.result
    print("\nresult:", result.output.model_dump_json(indent=2))
    usage, timing = result.usage, result.timing
    print(
        f"\nrequests={usage.requests} tool_calls={usage.tool_calls} "
        f"tokens in/out={usage.input_tokens}/{usage.output_tokens} "
        f"cost={'unknown' if result.cost is None else f'${result.cost:.6f}'} "
        f"latency={timing.latency:.3f}s"
    )
    if server is not None:
        server.assert_done()
        print("(offline run: set OPENROUTER_API_KEY or OPENAI_API_KEY to use a real model)")
    return result


if __name__ == "__main__":
    import anyio

    anyio.run(main)
