# pyright: reportMissingImports=false
# (pydantic-ai is installed by `make accuracy` from tools/bfcl/requirements.txt, not by `.[dev]`)
"""pydantic-ai as a user writes it: its OpenAI chat model on the same base URL, tools from the
converted schemas with ``pydantic_ai.Tool.from_schema``, default settings, at most 3 requests
(``UsageLimits(request_limit=3)``).

The answer is every call the tools received before the model's final answer (pydantic-ai does
not validate arguments against a schema given this way: the tools get what the model sent, once
it parses as JSON). A pydantic-ai error ends the case with the calls recorded so far, and its
type goes to ``note``.
"""

from __future__ import annotations

import httpx
from pydantic_ai import Agent, Tool
from pydantic_ai.exceptions import AgentRunError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.usage import UsageLimits

from ..cases import Case
from ..convert import to_openai_tools
from . import Calls, recorder, split_messages

REQUEST_LIMIT = 3


class PydanticAIClient:
    name = "pydantic-ai"

    def __init__(
        self, base_url: str, model_name: str, *, http_client: httpx.AsyncClient | None = None
    ) -> None:
        provider = OpenAIProvider(base_url=base_url, api_key="none", http_client=http_client)
        self.model = OpenAIChatModel(model_name, provider=provider)
        self.note: str | None = None

    def agent(self, case: Case, calls: Calls, system: str | None) -> Agent[None, str]:
        tools = [
            Tool.from_schema(
                recorder(spec["name"], calls),
                name=spec["name"],
                description=spec["description"],
                json_schema=spec["parameters"],
            )
            for spec in (tool["function"] for tool in to_openai_tools(case.functions))
        ]
        return Agent(self.model, tools=tools, system_prompt=system or ())

    async def answer(self, case: Case) -> Calls:
        self.note = None
        calls: Calls = []
        system, user = split_messages(case.messages)
        try:
            await self.agent(case, calls, system).run(
                user, usage_limits=UsageLimits(request_limit=REQUEST_LIMIT)
            )
        except AgentRunError as exc:
            self.note = type(exc).__name__
        return calls

    async def aclose(self) -> None:
        await self.model.client.close()
