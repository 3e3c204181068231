"""Replies small real models give, scripted, shared by the dispatch and output tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agentloop import LLAMA_CPP_PROFILE, OPENAI_PROFILE, Agent, RunResult, tool

# The output tool cannot be forced; tool results go as tool messages (tested elsewhere).
SMALL = LLAMA_CPP_PROFILE.replace(output_mode="tool", tool_results_as_text=False)


FORCED = OPENAI_PROFILE.replace(output_mode="tool")


ANSWER = {"city": "Paris", "temp": 21}


RAN: list[str] = []


class Weather(BaseModel):
    city: str
    temp: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    RAN.append(f"get_weather({city})")
    return f"sunny in {city}"


async def run(agent: Agent[Any], streamed: bool) -> RunResult[Any]:
    if not streamed:
        return await agent.run("weather?")
    async with agent.run_stream("weather?") as stream:
        async for _ in stream:
            pass
    return stream.result
