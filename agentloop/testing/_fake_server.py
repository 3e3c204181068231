"""A fake chat-completions server behind `httpx.MockTransport`, speaking real JSON and SSE.

The real request building and response parsing run; only the network is replaced. The server
follows a script of replies, records every request body it receives, and fails the test when the
script is not used up (or is overrun).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .._wire.compatible import OpenAICompatible
    from .._wire.profiles import ModelProfile

__all__ = ["FakeServer", "Reply", "ScriptItem", "error", "reply", "tool_call"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: text, tool calls, a refusal, or an HTTP error (`status` >= 400).

    `usage` replaces the usage object the server computes; ``report_usage=False`` sends none at
    all (no ``usage`` in a body, no usage chunk in a stream), as llama-cpp-python's server does.
    """

    content: str | None = None
    tool_calls: tuple[tuple[str, str, str], ...] = ()  # (id, name, arguments)
    refusal: str | None = None
    finish_reason: str | None = None
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=lambda: {})
    usage: Mapping[str, Any] | None = None
    cost: float | None = None
    report_usage: bool = True


ScriptItem = Reply | Callable[[dict[str, Any]], Reply]


def reply(content: str | dict[str, Any] | list[Any], **options: Any) -> Reply:
    """A text answer; a dict or list is sent as its JSON text (for structured output)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(content=text, **options)


def tool_call(*calls: tuple[str, Mapping[str, Any] | str], content: str | None = None) -> Reply:
    """An answer that calls tools: ``tool_call(("get_weather", {"city": "Paris"}), ...)``."""
    built = tuple(
        (f"call_{i}_{name}", name, args if isinstance(args, str) else json.dumps(args))
        for i, (name, args) in enumerate(calls)
    )
    return Reply(content=content, tool_calls=built)


def error(status: int, message: str = "fake error", **options: Any) -> Reply:
    """An HTTP error answer with an OpenAI-shaped body (override with ``body=``)."""
    body = options.pop("body", {"error": {"message": message, "type": "fake", "code": None}})
    return Reply(status=status, body=body, **options)


class FakeServer:
    """A scripted chat-completions server for offline tests.

    ``with FakeServer([tool_call(("add", {"a": 1})), reply("2")]) as server:
    agent = Agent(server.model(), ...)``; on leaving the block the script must be used up.
    `requests` holds every request body received (parsed JSON).
    """

    def __init__(
        self, script: Sequence[ScriptItem] = (), *, model_name: str = "fake-model"
    ) -> None:
        self.script: list[ScriptItem] = list(script)
        self.model_name = model_name
        self.requests: list[dict[str, Any]] = []
        self.overrun: bool = False
        self.transport: httpx.MockTransport = httpx.MockTransport(self._handle)

    def model(self, profile: ModelProfile | None = None, **options: Any) -> OpenAICompatible:
        """An `OpenAICompatible` model wired to this server (OpenAI's profile by default)."""
        from .._wire.compatible import OpenAICompatible
        from .._wire.profiles import OPENAI_PROFILE

        client = httpx.AsyncClient(transport=self.transport, base_url="http://fake.test/v1")
        return OpenAICompatible(
            self.model_name,
            base_url="http://fake.test/v1",
            api_key="sk-fake-server",
            http_client=client,
            profile=profile or OPENAI_PROFILE,
            **options,
        )

    def add(self, *items: ScriptItem) -> None:
        """Append answers to the script."""
        self.script.extend(items)

    def assert_done(self) -> None:
        """Raise `AssertionError` if answers are left, or if a request found none."""
        if self.overrun:
            raise AssertionError(
                f"fake server got more requests than its script ({len(self.requests)})"
            )
        if self.script:
            raise AssertionError(f"fake server script not used up: {len(self.script)} replies left")

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.assert_done()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.requests.append(body)
        if not self.script:
            self.overrun = True
            return httpx.Response(400, json={"error": {"message": "fake server: script exhausted"}})
        item = self.script.pop(0)
        answer = item(body) if callable(item) else item
        if answer.status >= 400:
            return httpx.Response(answer.status, json=answer.body, headers=dict(answer.headers))
        if body.get("stream"):
            return httpx.Response(
                200,
                content=b"".join(_sse(self.model_name, answer, body)),
                headers={"content-type": "text/event-stream", **answer.headers},
            )
        return httpx.Response(200, json=_completion(self.model_name, answer, body))


def _usage(answer: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    if answer.usage is not None:
        return dict(answer.usage)
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    text = (answer.content or "") + "".join(args for _, _, args in answer.tool_calls)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": max(1, len(text) // 4),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if answer.cost is not None:
        usage["cost"] = answer.cost
    return usage


def _finish(answer: Reply) -> str:
    return answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")


def _completion(model: str, answer: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": answer.refusal,
    }
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
            for id_, name, args in answer.tool_calls
        ]
    completion: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(answer), "logprobs": None}
        ],
    }
    if answer.report_usage:
        completion["usage"] = _usage(answer, body)
    return completion


def _pieces(text: str, size: int = 8) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _sse(model: str, answer: Reply, body: Mapping[str, Any]) -> Iterator[bytes]:
    def event(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _pieces(answer.content or ""):
        yield event({"content": piece})
    for piece in _pieces(answer.refusal or ""):
        yield event({"refusal": piece})
    for index, (id_, name, args) in enumerate(answer.tool_calls):
        first = {
            "index": index,
            "id": id_,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        yield event({"tool_calls": [first]})
        for piece in _pieces(args):
            yield event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield event({}, _finish(answer))
    options: Mapping[str, Any] = body.get("stream_options") or {}
    if options.get("include_usage") and answer.report_usage:
        usage_chunk: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": _usage(answer, body),
        }
        yield b"data: " + json.dumps(usage_chunk).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
