"""Quickstart: a task agent with two tools and a structured result.

    python examples/quickstart.py

With OPENROUTER_API_KEY or OPENAI_API_KEY set, it runs against that provider (override the model
with AGENTLOOP_MODEL, e.g. "openrouter:openai/gpt-4o-mini"). Without a key it runs a real but tiny
model (SmolLM2-135M-Instruct) on this machine through llama.cpp's server when it is installed
(``make demo`` installs it: ``python -m agentloop.local install``), else offline against
agentloop's built-in fake server, whose answers are scripted; a local server that fails is
reported in one line and the fake server plays instead. AGENTLOOP_DEMO=fake forces the fake
server, AGENTLOOP_DEMO=local the local model.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from typing import Any

from _common import LOCAL_SETTINGS, start_local_model, why_local_failed
from pydantic import BaseModel, Field

from agentloop import (
    Agent,
    AssistantMessage,
    ContextLengthError,
    Limits,
    Message,
    RunError,
    RunResult,
    ToolCallFinished,
    ToolMessage,
    WorkingLine,
    tool,
)
from agentloop.local import LocalServerError, local_available
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


LOCAL_CAVEAT = (
    "(local run: a 135M model; the tool calls and the schema validation are real, the "
    "answer's content is not to be trusted. Set OPENROUTER_API_KEY for a real one)"
)
LOCAL_NOTE = (
    "LOCAL: SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1. A 135M model shows REAL "
    "tool calls and schema-valid structured output, not wisdom: its facts may be wrong"
)


def choose_model(stack: ExitStack) -> tuple[Any, FakeServer | None, str]:
    """A provider when a key is set, else the local model when installed, else the fake server."""
    chosen, demo = os.environ.get("AGENTLOOP_MODEL"), os.environ.get("AGENTLOOP_DEMO", "")
    if os.environ.get("OPENROUTER_API_KEY") and demo not in ("fake", "local"):
        name = chosen or "openrouter:openai/gpt-4o-mini"
        return name, None, f"OpenRouter, model {name}"
    if os.environ.get("OPENAI_API_KEY") and demo not in ("fake", "local"):
        name = chosen or "openai:gpt-4o-mini"
        return name, None, f"OpenAI, model {name}"
    if demo != "fake":
        if local_available() or demo == "local":
            local = start_local_model(stack, required=demo == "local")
            if local is not None:
                return local, None, LOCAL_NOTE
        else:
            print("(no local model server is installed: using the fake server)")
    return fake_model()


def fake_model() -> tuple[Any, FakeServer, str]:
    server = FakeServer(offline_script(), model_name="gpt-4o-mini")
    note = "OFFLINE: agentloop's fake server; the model's answers are SCRIPTED, the tools are real"
    return server.model(), server, note


def make_agent(model: Any, server: FakeServer | None, local: bool) -> Agent[TripBrief]:
    instructions = "You plan trips. Use the tools; never guess weather or exchange rates."
    if not local:
        limits = Limits(max_requests=8, max_cost=0.05 if server is None else None)
        return Agent(
            model,
            instructions=instructions,
            tools=[get_weather, convert_currency],
            output_type=TripBrief,
            limits=limits,
        )
    # The tiny local model answers under a grammar built from the schemas, so its tool calls and
    # its answer are valid: through the output tool's arguments where the server takes tools
    # (llama-cpp-python), through the reply's JSON schema where they are prompted (llama-server
    # with SmolLM2's template). Greedy and seeded.
    prompted = getattr(model, "profile", None) is not None and model.profile.tool_mode == "prompted"
    return Agent(
        model,
        instructions=instructions,
        tools=[get_weather, convert_currency],
        output_type=TripBrief,
        output_mode="native" if prompted else "tool",
        settings=LOCAL_SETTINGS,
        limits=Limits(max_requests=6, max_repeated_calls=2),
    )


async def main() -> RunResult[TripBrief]:
    with ExitStack() as stack:
        model, server, where = choose_model(stack)
        try:
            result = await run(model, server, where)
        except LocalServerError as exc:  # the local server died during the run
            if os.environ.get("AGENTLOOP_DEMO") == "local":
                raise SystemExit(why_local_failed(exc)) from None
            print(f"\n{why_local_failed(exc)}: running again on the fake server\n")
            model, server, where = fake_model()
            result = await run(model, server, where)
    show(result, server, local=where == LOCAL_NOTE)
    return result


async def run(model: Any, server: FakeServer | None, where: str) -> RunResult[TripBrief]:
    local = where == LOCAL_NOTE
    print(f"== agentloop quickstart ({where})\n")
    agent = make_agent(model, server, local)
    print(f"user: {PROMPT}", flush=True)
    # "  ... model working (12 s, ~85 tokens)" on stderr while the model works (a terminal
    # only; elsewhere a plain line every 10 s of a long request)
    async with WorkingLine() as line:
        if local:  # llama-cpp-python's server cannot stream tool calls it chose itself
            try:
                return await agent.run(PROMPT)
            except (RunError, ContextLengthError) as exc:  # the tiny model did not finish
                line.clear()
                show_unfinished(exc)
                raise SystemExit(0) from None
        async with agent.run_stream(PROMPT) as stream:
            async for event in stream:
                line.feed(event)
                if isinstance(event, ToolCallFinished):
                    line.clear()
                    took = f"{event.duration * 1000:.1f} ms"
                    print(f"  tool {event.name} -> {event.result}  ({took})", flush=True)
        return stream.result


def show_calls(messages: list[Message]) -> None:
    print("\nthe tool calls the model made (arguments -> result):")
    results = {m.tool_call_id: m.content for m in messages if isinstance(m, ToolMessage)}
    for message in messages:
        for call in message.tool_calls if isinstance(message, AssistantMessage) else ():
            result = results.get(call.id, "(the final result)")
            print(f"  {call.name}({short(call.arguments)}) -> {short(result)}")


def short(text: str, limit: int = 200) -> str:
    """`text` on one line, cut at `limit` characters (a tiny model's arguments can ramble)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."


def show_unfinished(exc: RunError | ContextLengthError) -> None:
    print(f"\nthe tiny model did not finish: {type(exc).__name__}: {exc}")
    show_calls(exc.messages)
    print(f"\n{LOCAL_CAVEAT}")


def show(result: RunResult[TripBrief], server: FakeServer | None, *, local: bool) -> None:
    show_calls(result.messages)
    print("\nresult:", result.output.model_dump_json(indent=2))
    usage, timing = result.usage, result.timing
    print(
        f"\nrequests={usage.requests} tool_calls={usage.tool_calls}, {usage.describe_tokens()}, "
        f"cost={'unknown' if result.cost is None else f'${result.cost:.6f}'}, "
        f"latency={timing.latency:.3f}s"
    )
    if server is not None:
        server.assert_done()
        print("(offline run: set OPENROUTER_API_KEY or OPENAI_API_KEY to use a real model)")
    if local:
        print(LOCAL_CAVEAT)


if __name__ == "__main__":
    import anyio

    anyio.run(main)
