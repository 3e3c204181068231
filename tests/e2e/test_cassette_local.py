"""A cassette recorded from the real local model server, replayed with the server stopped.

Recorded on asyncio (aiohttp), replayed on asyncio and on trio (httpx): a run with a tool, and a
streamed run with structured output, give the same results from the file alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel

from agentloop import Agent, ModelSettings, TextDelta, messages_to_json, tool
from agentloop.local import LocalServer, local_available
from agentloop.testing import cassette

GREEDY = ModelSettings(temperature=0.0, seed=7, max_completion_tokens=64)


class Person(BaseModel):
    name: str
    age: int


@tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather in a city.

    Args:
        city: the city name.
    """
    return {"city": city, "celsius": 22.0}


async def _runs(model: Any) -> dict[str, Any]:
    tools = Agent(model, tools=[get_weather], settings=GREEDY | ModelSettings(tool_choice="auto"))
    planned = await tools.run("What is the weather in Lisbon? Use the tool.")
    texts: list[str] = []
    extract = Agent(model, output_type=Person, settings=GREEDY)
    async with extract.run_stream("Extract the person: Ana is 31 years old.") as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                texts.append(event.text)
    return {
        "planned": messages_to_json(planned.messages),
        "planned_usage": (planned.usage.requests, planned.usage.input_tokens),
        "person": stream.result.output,
        "texts": texts,
    }


def test_a_recorded_local_run_replays_with_the_server_stopped(tmp_path: Path) -> None:
    assert local_available(), "the local model is not installed: run `make e2e`"
    path = tmp_path / "local.json"
    with LocalServer(backend="llama-server", n_ctx=2048) as server:
        model = server.model()
        with cassette(path, "record"):
            recorded = anyio.run(_runs, model, backend="asyncio")
        url = server.base_url
    assert len(recorded["texts"]) > 1
    exchanges = json.loads(path.read_text())["exchanges"]
    assert exchanges[-1]["response"]["chunks"], "the stream was not kept in its pieces"
    assert all(e["request"]["url"].startswith(url) for e in exchanges)

    for backend in ("asyncio", "trio"):  # the server is gone: only the file can answer
        with cassette(path, "replay"):
            assert anyio.run(_runs, model, backend=backend) == recorded
