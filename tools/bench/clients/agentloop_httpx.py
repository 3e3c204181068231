"""agentloop on httpx's own pool (the design before StackPool), for the pool comparison only:
a caller's client with the same limits the owned client used to have."""

from __future__ import annotations

import httpx

from agentloop import OPENAI_PROFILE, Agent, OpenAICompatible

from . import agentloop_
from .common import SYSTEM, add_async

BUILD_TOOLS = agentloop_.BUILD_TOOLS


class Client(agentloop_.Client):
    name = "agentloop on httpx's pool"

    async def open(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=20)
        self.http = httpx.AsyncClient(limits=limits, timeout=600)
        self.model = OpenAICompatible(
            "bench-model", base_url=base_url, api_key="bench-key", profile=OPENAI_PROFILE,
            http_client=self.http,
        )  # fmt: skip
        self.agent = Agent(self.model, instructions=SYSTEM, tools=[add_async])

    async def close(self) -> None:
        await self.http.aclose()
