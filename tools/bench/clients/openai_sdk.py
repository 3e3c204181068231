# pyright: reportMissingImports=false
# (the peers are installed in tools/bench/.venv only, not in the project's .venv)
"""The openai SDK (AsyncOpenAI) with a hand-written tool loop; `parse` for the report."""

from __future__ import annotations

import json
from typing import Any

import httpx
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from .common import ADD_SCHEMA, PROMPT, SYSTEM, BaseClient, Report, add

BUILD_TOOLS = None  # hand-written JSON schemas (or `pydantic_function_tool` per pydantic model)
# `parse` only accepts strict function tools.
STRICT_ADD = {"type": "function", "function": {**ADD_SCHEMA["function"], "strict": True}}


class Client(BaseClient):
    name = "openai SDK loop"

    async def open(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = AsyncOpenAI(
            base_url=base_url,
            api_key="bench-key",
            max_retries=2,
            http_client=DefaultAsyncHttpxClient(limits=limits),
        )

    async def close(self) -> None:
        await self.client.close()

    async def _loop(self, structured: bool) -> Any:
        messages: list[Any] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
        ]
        while True:
            if structured:
                completion: Any = await self.client.chat.completions.parse(
                    model="bench-model", messages=messages, tools=[STRICT_ADD],
                    response_format=Report,
                )  # fmt: skip
            else:
                completion = await self.client.chat.completions.create(
                    model="bench-model", messages=messages, tools=[ADD_SCHEMA]
                )
            message = completion.choices[0].message
            if not message.tool_calls:
                return message.parsed if structured else message.content
            messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
            for call in message.tool_calls:
                args = json.loads(call.function.arguments)
                result = str(add(**args))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    async def tool_run(self) -> str:
        return await self._loop(False)

    async def structured_run(self) -> Report:
        return await self._loop(True)

    async def stream_run(self) -> int:
        deltas = 0
        parts: list[str] = []
        stream = await self.client.chat.completions.create(
            model="bench-model", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    deltas += 1
        assert "".join(parts)
        return deltas
