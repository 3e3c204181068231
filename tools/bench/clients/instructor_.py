# pyright: reportMissingImports=false
# (the peers are installed in tools/bench/.venv only, not in the project's .venv)
"""instructor (structured output only): the tool turn by hand on its patched openai client, the
final answer as `response_model=Report` (Mode.JSON_SCHEMA: a response_format, no extra tool)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import instructor
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from .common import ADD_SCHEMA, PROMPT, SYSTEM, BaseClient, Report, add

BUILD_TOOLS = None  # instructor builds no tools: it turns one model into a response format


class Client(BaseClient):
    name = "instructor"

    async def open(self, base_url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.openai = AsyncOpenAI(
            base_url=base_url,
            api_key="bench-key",
            http_client=DefaultAsyncHttpxClient(limits=limits),
        )
        self.client = instructor.from_openai(self.openai, mode=instructor.Mode.JSON_SCHEMA)

    async def close(self) -> None:
        await self.openai.close()

    async def structured_run(self) -> Report:
        messages: list[Any] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
        ]
        completion = await self.openai.chat.completions.create(
            model="bench-model", messages=messages, tools=[ADD_SCHEMA]
        )
        message = completion.choices[0].message
        messages.append(
            {"role": "assistant", "content": message.content or "",
             "tool_calls": [c.model_dump() for c in message.tool_calls or []]}
        )  # fmt: skip
        for call in message.tool_calls or []:
            result = str(add(**json.loads(call.function.arguments)))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return await self.client.chat.completions.create(
            model="bench-model", messages=messages, response_model=Report, max_retries=0
        )
