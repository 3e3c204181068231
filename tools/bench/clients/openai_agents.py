# pyright: reportMissingImports=false
# (the peers are installed in tools/bench/.venv only, not in the project's .venv)
"""openai-agents: an Agent on OpenAIChatCompletionsModel, tracing off, run by `Runner`."""

from __future__ import annotations

from typing import Any

import httpx
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from openai.types.responses import ResponseTextDeltaEvent

from .common import PROMPT, SYSTEM, BaseClient, Report, add_async


def BUILD_TOOLS(functions: list[Any]) -> Any:
    return [function_tool(f) for f in functions]


class Client(BaseClient):
    name = "openai-agents"

    async def open(self, base_url: str, connections: int) -> None:
        set_tracing_disabled(True)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = AsyncOpenAI(
            base_url=base_url,
            api_key="bench-key",
            http_client=DefaultAsyncHttpxClient(limits=limits),
        )
        model = OpenAIChatCompletionsModel(model="bench-model", openai_client=self.client)
        add = function_tool(add_async)
        self.agent = Agent(name="calc", instructions=SYSTEM, tools=[add], model=model)
        self.structured = Agent(
            name="calc", instructions=SYSTEM, tools=[add], model=model, output_type=Report
        )
        self.plain = Agent(name="plain", model=model)

    async def close(self) -> None:
        await self.client.close()

    async def tool_run(self) -> str:
        return (await Runner.run(self.agent, PROMPT)).final_output

    async def structured_run(self) -> Report:
        return (await Runner.run(self.structured, PROMPT)).final_output

    async def stream_run(self) -> int:
        deltas = 0
        result = Runner.run_streamed(self.plain, PROMPT)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(
                event.data, ResponseTextDeltaEvent
            ):
                deltas += 1
        return deltas
