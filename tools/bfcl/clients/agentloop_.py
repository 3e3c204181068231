"""agentloop as a user writes it: a model without a profile (it learns the server), tools from
the converted schemas with `Tool.from_schema`, an `Agent` with default settings and at most 3
requests, the BFCL question as the prompt.

The answer is every call the tools received, after agentloop validated its arguments, before the
model's final answer: a call whose arguments failed validation never reaches its tool (agentloop
tells the model and lets it try again). An agentloop error (the request limit, an API error...)
ends the case with the calls recorded so far, and its type goes to ``note``.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentloop import Agent, AgentloopError, Limits, ModelProfile, OpenAICompatible, Tool

from ..cases import Case
from ..convert import to_openai_tools
from . import Calls, recorder

MAX_REQUESTS = 3


class AgentloopClient:
    name = "agentloop"

    def __init__(
        self,
        base_url: str,
        model_name: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        profile: ModelProfile | None = None,
    ) -> None:
        options: dict[str, Any] = {"api_key": "none"}
        if http_client is not None:
            options["http_client"] = http_client
        if profile is not None:  # tests only: the benchmark's model learns its server
            options["profile"] = profile
        self.model = OpenAICompatible(model_name, base_url=base_url, **options)
        self.note: str | None = None

    def agent(self, case: Case, calls: Calls) -> Agent[str]:
        tools = [
            Tool.from_schema(
                spec["name"],
                spec["description"],
                spec["parameters"],
                recorder(spec["name"], calls),
            )
            for spec in (tool["function"] for tool in to_openai_tools(case.functions))
        ]
        return Agent(self.model, tools=tools, limits=Limits(max_requests=MAX_REQUESTS))

    async def answer(self, case: Case) -> Calls:
        self.note = None
        calls: Calls = []
        try:
            await self.agent(case, calls).run(case.messages)
        except AgentloopError as exc:
            self.note = type(exc).__name__
        return calls

    async def aclose(self) -> None:
        await self.model.aclose()
