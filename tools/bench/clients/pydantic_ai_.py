# pyright: reportMissingImports=false
# (the peers are installed in tools/bench/.venv only, not in the project's .venv)
"""pydantic-ai: an Agent on OpenAIChatModel (its own httpx client with the same limits)."""

from __future__ import annotations

from typing import Any

import httpx
from openai import AsyncOpenAI
from pydantic_ai import Agent, NativeOutput, Tool
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from .common import PROMPT, SYSTEM, BaseClient, Report, add_async


def BUILD_TOOLS(functions: list[Any]) -> Any:
    return [Tool(f).tool_def for f in functions]


class Client(BaseClient):
    name = "pydantic-ai"

    async def open(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(limits=limits, timeout=600)
        client = AsyncOpenAI(base_url=base_url, api_key="bench-key", http_client=self.http)
        model = OpenAIChatModel("bench-model", provider=OpenAIProvider(openai_client=client))
        self.agent = Agent(model, instructions=SYSTEM, tools=[add_async])
        self.structured = Agent(
            model, instructions=SYSTEM, tools=[add_async], output_type=NativeOutput(Report)
        )
        self.plain = Agent(model)

    async def close(self) -> None:
        await self.http.aclose()

    async def tool_run(self) -> str:
        return (await self.agent.run(PROMPT)).output

    async def structured_run(self) -> Report:
        return (await self.structured.run(PROMPT)).output

    async def stream_run(self) -> int:
        deltas = 0
        async with self.plain.run_stream(PROMPT) as result:
            async for _ in result.stream_text(delta=True, debounce_by=None):
                deltas += 1
        return deltas
