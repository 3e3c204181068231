"""The raw httpx loop on agentloop's StackPool transport, for the pool comparison only."""

from __future__ import annotations

import httpx

from agentloop._wire.pool import StackPool
from agentloop._wire.transport import ssl_context

from . import raw

BUILD_TOOLS = None


class Client(raw.Client):
    name = "raw httpx loop on StackPool"

    async def open(self, base_url: str, connections: int) -> None:
        transport = StackPool(ssl_context(), max_idle=connections)
        self.http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=600)
