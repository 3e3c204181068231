"""The floor: a hand-written loop on raw httpx (json in, json out, pydantic for the report).

The loop itself (`RawLoop`) is shared by the other raw floors, which only change how a body is
posted and how an event stream's lines are read: `raw_aiohttp` (aiohttp's C parser) and
`raw_asyncio` (bare asyncio, the physical limit of Python here).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .common import ADD_SCHEMA, PROMPT, SYSTEM, BaseClient, Report, add

BUILD_TOOLS = None  # hand-written JSON schemas: nothing to build
_SCHEMA = {"name": "Report", "schema": Report.model_json_schema(), "strict": True}
_FORMAT = {"type": "json_schema", "json_schema": _SCHEMA}
PATH = "/chat/completions"


class RawLoop(BaseClient):
    """The tool loop and the stream reader; subclasses post bodies and read lines."""

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def lines(self, body: dict[str, Any]) -> AsyncIterator[str]:
        raise NotImplementedError

    async def _loop(self, extra: dict[str, Any]) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
        ]
        while True:
            body = {"model": "bench-model", "messages": messages, "tools": [ADD_SCHEMA], **extra}
            message = (await self.post(body))["choices"][0]["message"]
            messages.append(message)
            calls = message.get("tool_calls")
            if not calls:
                return message["content"]
            for call in calls:
                args = json.loads(call["function"]["arguments"])
                result = str(add(**args))
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})

    async def tool_run(self) -> str:
        return await self._loop({})

    async def structured_run(self) -> Report:
        text = await self._loop({"response_format": _FORMAT})
        return Report.model_validate_json(text)

    async def stream_run(self) -> int:
        body = {"model": "bench-model", "messages": [{"role": "user", "content": PROMPT}]}
        body["stream"] = True
        deltas = 0
        parts: list[str] = []
        async for line in self.lines(body):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk["choices"]:
                text = choice["delta"].get("content")
                if text:
                    parts.append(text)
                    deltas += 1
        assert "".join(parts)
        return deltas


class Client(RawLoop):
    name = "raw httpx loop"

    async def open(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=600)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(PATH, json=body)
        response.raise_for_status()
        return response.json()

    async def lines(self, body: dict[str, Any]) -> AsyncIterator[str]:
        async with self.http.stream("POST", PATH, json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                yield line
