"""`cassette`: a run recorded against a real HTTP server on 127.0.0.1, the server stopped, the
run replayed from the file, on every HTTP path (aiohttp, httpx on asyncio, httpx on trio)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from support.http_paths import http_paths_fixture
from support.local_server import Reply as WireReply

from agentloop import Agent, APIConnectionError, TextDelta, messages_to_json, tool
from agentloop.testing import CassetteError, FakeServer, cassette, error, reply, tool_call

from ._served import KEY, served

pytestmark = pytest.mark.anyio
anyio_backend = http_paths_fixture()


class Sum(BaseModel):
    total: int
    words: str


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


SCRIPT = [tool_call(("add", {"a": 2, "b": 3})), reply({"total": 5, "words": "five"})]


def _agent(model: Any) -> Agent[Sum]:
    return Agent(model, tools=[add], output_type=Sum)


def _file(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


async def test_a_run_replays_with_the_server_stopped(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with served(SCRIPT) as server:
        model = server.model()
        with cassette(path) as recording:
            recorded = await _agent(model).run("2 + 3?")
        assert recording.recording
    assert len(server.local.requests) == 2

    with cassette(path) as replaying:  # "once", and the file exists: replay
        replayed = await _agent(model).run("2 + 3?")
    assert not replaying.recording
    assert replayed.output == recorded.output == Sum(total=5, words="five")
    assert replayed.usage.input_tokens == recorded.usage.input_tokens
    assert replayed.usage.tool_calls == 1
    assert messages_to_json(replayed.messages) == messages_to_json(recorded.messages)
    exchanges = _file(path)["exchanges"]
    assert [e["response"]["status"] for e in exchanges] == [200, 200]
    assert exchanges[1]["request"]["body"]["messages"][-1]["role"] == "tool"
    assert exchanges[0]["response"]["body"].encode() == server.sent[0]  # byte for byte


async def test_a_stream_replays_its_exact_bytes_and_events(tmp_path: Path) -> None:
    path = tmp_path / "stream.json"

    async def events(model: Any) -> tuple[list[Any], Sum]:
        seen: list[Any] = []
        async with _agent(model).run_stream("2 + 3?") as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    seen.append(event.text)
        return seen, stream.result.output

    with served(SCRIPT) as server:
        model = server.model()
        with cassette(path, "record"):
            recorded = await events(model)
    with cassette(path, "replay"):
        replayed = await events(model)
    assert replayed == recorded
    assert recorded[1] == Sum(total=5, words="five") and len(recorded[0]) > 1
    exchanges = _file(path)["exchanges"]
    for exchange, sent in zip(exchanges, server.sent, strict=True):
        chunks = exchange["response"]["chunks"]
        assert "".join(chunks).encode() == sent
        assert exchange["response"]["headers"]["content-type"].startswith("text/event-stream")


async def test_a_retry_is_two_exchanges_and_replays_as_one(tmp_path: Path) -> None:
    path = tmp_path / "retry.json"
    script = [error(500, "try again", headers={"retry-after": "0"}), reply("fine")]
    with served(script) as server:
        model = server.model()
        with cassette(path):
            recorded = await Agent(model).run("hi")
    with cassette(path):
        replayed = await Agent(model).run("hi")
    assert recorded.usage.retries == replayed.usage.retries == 1
    assert replayed.output == "fine"
    exchanges = _file(path)["exchanges"]
    assert [e["response"]["status"] for e in exchanges] == [500, 200]
    assert exchanges[0]["response"]["headers"]["retry-after"] == "0"
    assert exchanges[0]["request"] == exchanges[1]["request"]


async def test_a_dropped_connection_replays_as_a_connection_error(tmp_path: Path) -> None:
    path = tmp_path / "drop.json"
    with served([WireReply.drop(), reply("fine")]) as server:
        model = server.model()
        with cassette(path):
            recorded = await Agent(model).run("hi")
    with cassette(path):
        replayed = await Agent(model).run("hi")
    assert recorded.usage.retries == replayed.usage.retries == 1
    assert _file(path)["exchanges"][0]["error"]["kind"] == "connection"
    failing = pytest.raises(APIConnectionError, match=r"request to 127\.0\.0\.1 failed")
    with cassette(path, allow_unused=True), failing:
        await Agent(server.model(max_retries=0)).run("hi")


async def test_a_request_not_recorded_names_it_and_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.json"
    with served([reply("fine")]) as server:
        model = server.model()
        with cassette(path):
            await Agent(model).run("hi")
    with cassette(path) as replaying, pytest.raises(CassetteError) as caught:
        await Agent(model).run("hello")
    message = str(caught.value)
    assert "request 1 (POST /v1/chat/completions)" in message
    assert 'body.messages[0].content: recorded "hi", sent "hello"' in message
    assert "--cassette-mode=record" in message
    assert replaying._sent == 1  # pyright: ignore[reportPrivateUsage] # not retried


async def test_nothing_secret_is_written(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    echo = {"x-request-id": f"req-{KEY}", "set-cookie": "session=abcdef123456"}
    script = [error(500, f"bad key {KEY}", headers=echo), reply(f"your key is {KEY}")]
    with served(script) as server:
        model = server.model(
            headers={"OpenAI-Organization": "org-SECRET-ORG", "OpenAI-Project": "proj_SECRET"}
        )
        with cassette(path):
            recorded = await Agent(model).run(f"the key {KEY}?")
    assert server.local.requests[0].headers["openai-organization"] == "org-SECRET-ORG"
    text = path.read_text()
    for secret in (KEY, "org-SECRET-ORG", "proj_SECRET", "abcdef123456"):
        assert secret not in text
    assert "authorization" not in text.lower() and "set-cookie" not in text
    assert json.loads(text)["exchanges"][0]["response"]["headers"]["x-request-id"] == "req-***"
    assert recorded.output == f"your key is {KEY}"
    with cassette(path):
        replayed = await Agent(model).run(f"the key {KEY}?")
    assert replayed.output == "your key is ***"


async def test_a_caller_s_http_client_is_recorded_too(tmp_path: Path) -> None:
    path = tmp_path / "client.json"
    with FakeServer([reply("from the mock")]) as fake, cassette(path):
        assert (await Agent(fake.model()).run("hi")).output == "from the mock"
    with FakeServer([]) as empty, cassette(path):  # the empty script would fail any request
        assert (await Agent(empty.model()).run("hi")).output == "from the mock"
