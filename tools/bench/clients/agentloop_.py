"""agentloop: one Agent per scenario, its own HTTP client (owned per event loop)."""

from __future__ import annotations

from typing import Any

from agentloop import OPENAI_PROFILE, Agent, OpenAICompatible, TextDelta, tool

from .common import PROMPT, SYSTEM, BaseClient, Report, add_async


def BUILD_TOOLS(functions: list[Any]) -> Any:
    return [tool(f).definition(None) for f in functions]


class Client(BaseClient):
    name = "agentloop"

    async def open(self, base_url: str, connections: int) -> None:
        self.model = OpenAICompatible(
            "bench-model",
            base_url=base_url,
            api_key="bench-key",
            profile=OPENAI_PROFILE,
            max_connections=connections,
        )
        self.agent = Agent(self.model, instructions=SYSTEM, tools=[add_async])
        self.structured = Agent(
            self.model,
            instructions=SYSTEM,
            tools=[add_async],
            output_type=Report,
            output_mode="native",
        )
        self.plain = Agent(self.model)

    async def close(self) -> None:
        await self.model.aclose()

    async def tool_run(self) -> str:
        return (await self.agent.run(PROMPT)).output

    async def structured_run(self) -> Report:
        return (await self.structured.run(PROMPT)).output

    async def stream_run(self) -> int:
        deltas = 0
        async with self.plain.run_stream(PROMPT) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    deltas += 1
        return deltas
