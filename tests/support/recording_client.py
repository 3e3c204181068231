"""An httpx client that records the requests a model sends."""

from __future__ import annotations

import httpx

from agentloop._messages import ModelRequest, UserMessage

OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.25},
}


REQUEST = ModelRequest((UserMessage("hello"),))


class Recorder:
    def __init__(self, body=None):
        self.requests: list[httpx.Request] = []
        self.body = body or OK

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))
