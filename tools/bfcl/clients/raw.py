"""The raw client: one chat-completions request, the reply's ``tool_calls`` as they come.

What BFCL's own OpenAI function-calling handler does for a single-turn case: the question's
messages and the tools, one request, and each call's ``function.arguments`` read with
``json.loads`` (arguments that are not a JSON object make the output undecodable). The body holds
``model``, ``messages``, ``tools`` and ``tool_choice: "auto"``, nothing else: the server's own
defaults decide the rest.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ..cases import Case
from ..convert import to_openai_tools
from . import Calls, Undecodable


def decode_tool_calls(message: dict[str, Any]) -> Calls:
    """``[{name: arguments}]`` from an assistant message; `Undecodable` for bad arguments."""
    calls: Calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        raw = function.get("arguments")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError as exc:
            raise Undecodable(f"arguments of {function.get('name')!r}: {exc}") from None
        if not isinstance(arguments, dict):
            raise Undecodable(f"arguments of {function.get('name')!r} are not an object: {raw!r}")
        calls.append({str(function.get("name")): arguments})
    return calls


class RawClient:
    name = "raw"

    def __init__(
        self, base_url: str, model_name: str, *, http_client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_name = model_name
        self.http = http_client or httpx.AsyncClient(timeout=600.0, trust_env=False)
        self.note: str | None = None

    async def answer(self, case: Case) -> Calls:
        self.note = None
        body = {
            "model": self.model_name,
            "messages": case.messages,
            "tools": to_openai_tools(case.functions),
            "tool_choice": "auto",
        }
        try:
            response = await self.http.post(self.url, json=body)
            response.raise_for_status()
            message = response.json()["choices"][0]["message"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            self.note = type(exc).__name__  # no reply: no call (BFCL records an error there)
            return []
        return decode_tool_calls(message)

    async def aclose(self) -> None:
        await self.http.aclose()
