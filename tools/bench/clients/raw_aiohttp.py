"""The transport floor: the raw loop on aiohttp (C HTTP parser, its own connection pool)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from .raw import PATH, RawLoop

BUILD_TOOLS = None


class Client(RawLoop):
    name = "raw aiohttp loop"

    async def open(self, base_url: str, connections: int) -> None:
        connector = aiohttp.TCPConnector(limit=connections)
        timeout = aiohttp.ClientTimeout(total=600)
        self.url = base_url.rstrip("/") + PATH
        self.http = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def close(self) -> None:
        await self.http.close()

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url, data=json.dumps(body), headers=_JSON) as response:
            response.raise_for_status()
            return json.loads(await response.read())

    async def lines(self, body: dict[str, Any]) -> AsyncIterator[str]:
        async with self.http.post(self.url, data=json.dumps(body), headers=_JSON) as response:
            response.raise_for_status()
            async for line in response.content:
                yield line.decode().rstrip("\r\n")


_JSON = {"Content-Type": "application/json"}
