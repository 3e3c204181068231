"""The API key never leaks: not in errors (message, repr, body, partial answers, tracebacks with
their causes), not in DEBUG logs (agentloop's, httpx's, httpcore's), not in the repr of any public
object; and a redirect to another host never carries the Authorization header.

The key is a sentinel; servers on 127.0.0.1 echo it back in every place a real server might.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from reliability.helpers import FaultServer, Sleeps
from structlog.testing import capture_logs
from support.http_paths import http_paths_fixture

import agentloop
from agentloop import (
    DEFAULT_PROFILE,
    Agent,
    AgentloopError,
    APIConnectionError,
    APIStatusError,
    ModelRequest,
    ModelSettings,
    OpenAI,
    OpenAICompatible,
    OpenRouter,
    UserMessage,
    tool,
)
from agentloop._wire.httpx_transport import HttpxTransport
from agentloop._wire.retry import RetryPolicy

from faultserver import Plan, error, ok, refused_url, stream, tool_call  # isort: skip

anyio_backend = http_paths_fixture()  # aiohttp, httpx on asyncio, httpx on trio

KEY = "sk-SENTINEL-do-not-leak-4b1d9e"
pytestmark = pytest.mark.anyio


class Everything(logging.Handler):
    """Keeps every record of every logger, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.__dict__!r}")


@pytest.fixture
def debug_logs() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def model_for(url: str, **options: Any) -> OpenAICompatible:
    policy = RetryPolicy(max_retries=1, sleep=Sleeps())
    options.setdefault("profile", DEFAULT_PROFILE)  # the scripts follow the default profile
    return OpenAICompatible("m", base_url=url, api_key=KEY, retry=policy, timeout=2, **options)


def everything_about(error: BaseException) -> str:
    """Every text an error can show: str, repr, its traceback with causes, its attributes."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for name in ("message", "body", "headers", "partial", "messages", "usage", "errors", "raw"):
        parts.append(repr(getattr(error, name, None)))
    parts.append(repr(error.args))
    cause = error.__cause__ or error.__context__
    while cause is not None:
        parts.extend([str(cause), repr(cause), repr(getattr(cause, "request", None))])
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


async def run_once(agent: Agent[Any], streaming: bool) -> Any:
    if not streaming:
        return await agent.run("hi")
    async with agent.run_stream("hi") as events:
        async for _ in events:
            pass
    return events.result


ECHO = f"Incorrect API key provided: {KEY}. You can find your API key at ..."
LEAKY = {
    "401-echo": [error(401, ECHO, code="invalid_api_key")],
    "400-in-metadata": [error(400, "bad", metadata={"raw": f'{{"error": "key {KEY}"}}'})],
    "html-page": [Plan(502, {"Content-Type": "text/html"}, [f"<h1>bad key {KEY}</h1>".encode()])]
    * 2,
    "key-in-headers": [error(403, "no", headers={"x-echo": f"Bearer {KEY}"})],
    "stream-error-event": [stream(events=[{"error": {"message": f"bad key {KEY}", "code": 401}}])],
    "stream-partial": [stream(f"the key is {KEY}", done=False, usage=None, abort_after=3)],
    "stream-garbage": [stream(events=[f"{{not json {KEY}"])],
    "json-garbage": [Plan(200, {"Content-Type": "application/json"}, [f"<{KEY}>".encode()])],
    "body-cut": [
        Plan(200, {"Content-Type": "application/json"}, [f'{{"x": "{KEY}'.encode()],
             content_length=900, abort_after=1)
    ] * 2,
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LEAKY))
@pytest.mark.parametrize("streaming", [False, True])
async def test_errors_never_show_the_key(server, debug_logs, case, streaming):
    server.script(*LEAKY[case])
    model = model_for(server.base_url)
    agent = Agent(model)
    with capture_logs() as structured, pytest.raises(AgentloopError) as info:
        await run_once(agent, streaming)
    on_httpx = isinstance(model._endpoint.transports.get(), HttpxTransport)
    await model.aclose()
    assert server.requests  # the server was reached and echoed the key
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in everything_about(info.value)
    assert KEY not in repr(structured)
    lines = debug_logs.lines
    if case == "key-in-headers":
        # httpcore's own DEBUG trace prints raw response headers: a server that echoes the key
        # in a response header shows there, outside agentloop's reach (nothing of ours does)
        lines = [line for line in lines if not line.startswith("httpcore")]
    assert KEY not in "\n".join(lines)
    # DEBUG logs were on: httpx and httpcore trace every request (aiohttp logs none of its own)
    if on_httpx:
        assert any(line.startswith("httpx") for line in debug_logs.lines)
    else:
        assert logging.getLogger("aiohttp").isEnabledFor(logging.DEBUG)


async def test_connection_errors_never_show_the_key(debug_logs):
    model = model_for(refused_url())
    with pytest.raises(APIConnectionError) as info:
        await Agent(model).run("hi")
    await model.aclose()
    assert KEY not in everything_about(info.value)
    assert KEY not in "\n".join(debug_logs.lines)


async def test_a_successful_run_with_tools_logs_nothing_secret(server, debug_logs):
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    server.script(ok(None, [tool_call("echo", {"text": "x"})]), ok("done"), stream("streamed"))
    model = model_for(server.base_url)
    with capture_logs() as structured:
        result = await Agent(model, tools=[echo]).run("hi")
        async with Agent(model).run_stream("hi") as events:
            async for _ in events:
                pass
    await model.aclose()
    assert (result.output, events.result.output) == ("done", "streamed")
    assert structured  # agentloop logged its events
    assert KEY not in repr(structured)
    assert KEY not in "\n".join(debug_logs.lines)
    assert KEY not in repr(result) + repr(events.result) + repr(result.messages_json())


def public_objects(server_url: str) -> list[Any]:
    models = [
        OpenAICompatible("m", base_url=server_url, api_key=KEY),
        OpenAICompatible("m", base_url=server_url, api_key=KEY, api_key_header="api-key"),
        OpenAI("gpt-4o", api_key=KEY, base_url=server_url, organization="org", project="p"),
        OpenRouter("openai/gpt-4o", api_key=KEY, base_url=server_url, app_title="t"),
    ]
    agent = Agent(models[0], settings=ModelSettings(temperature=0.1))
    return [
        *models,
        agent,
        agent.settings,
        agent.limits,
        RetryPolicy(),
        ModelRequest((UserMessage("hi"),)),
    ]


def test_reprs_of_every_public_object(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    objects = public_objects("http://127.0.0.1:9/v1")
    objects += [OpenAI("gpt-4o"), OpenRouter("x/y"), agentloop.infer_model("openai:gpt-4o")]
    for item in objects:
        assert KEY not in repr(item), type(item)
        assert KEY not in str(item), type(item)
        assert KEY not in repr(getattr(item, "default_headers", "")), type(item)
        assert KEY not in repr(getattr(item, "extra_body", "")), type(item)
    # every public name of the package, where it is a plain value
    for name in agentloop.__all__:
        assert KEY not in repr(getattr(agentloop, name))


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("user_client_follows", [False, True])
async def test_redirects_to_another_host_never_carry_the_key(server, status, user_client_follows):
    with FaultServer() as elsewhere:
        elsewhere.script(ok("stolen"))
        # another host: "localhost" is not "127.0.0.1", whatever the port
        target = f"http://localhost:{elsewhere.port}/v1/chat/completions"
        server.script(Plan(status, {"Location": target}, [b""]))
        client = httpx.AsyncClient(follow_redirects=True) if user_client_follows else None
        model = model_for(server.base_url, http_client=client)
        with pytest.raises(APIStatusError, match="not followed") as info:
            await model.request(ModelRequest((UserMessage("hi"),)))
        await model.aclose()
        if client is not None:
            await client.aclose()
        assert info.value.status_code == status
        assert elsewhere.requests == []
        assert KEY not in everything_about(info.value)


async def test_httpx_itself_strips_the_key_on_a_cross_host_redirect():
    """The fallback if a caller follows redirects by hand with httpx: no Authorization goes."""
    with FaultServer() as elsewhere, FaultServer() as origin:
        elsewhere.script(ok("x"))
        origin.script(Plan(307, {"Location": f"http://localhost:{elsewhere.port}/v1"}, [b""]))
        async with httpx.AsyncClient(follow_redirects=True) as client:
            await client.post(origin.url("/v1"), headers={"Authorization": f"Bearer {KEY}"})
        assert len(elsewhere.requests) == 1
        assert "authorization" not in elsewhere.requests[0].headers
