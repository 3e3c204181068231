"""A `FakeServer` script served over real HTTP on 127.0.0.1, for tests that record cassettes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from support.local_server import LocalServer, Recorded
from support.local_server import Reply as WireReply

from agentloop import OpenAICompatible
from agentloop.testing import FakeServer
from agentloop.testing._fake_server import ScriptItem

KEY = "sk-test-CASSETTE-0123456789abcdef"
_DROPPED = frozenset(("content-length", "transfer-encoding", "connection"))


class Served:
    """The running server, the fake behind it, and every body it sent (for byte comparisons)."""

    def __init__(self, local: LocalServer, fake: FakeServer) -> None:
        self.local = local
        self.fake = fake
        self.sent: list[bytes] = []

    def model(self, **options: Any) -> OpenAICompatible:
        from agentloop._wire.profiles import OPENAI_PROFILE

        options.setdefault("profile", OPENAI_PROFILE)
        options.setdefault("api_key", KEY)
        return OpenAICompatible("fake-model", base_url=self.local.base_url, **options)


def _answer(served: Served, recorded: Recorded) -> WireReply:
    script: list[Any] = served.fake.script
    if script and isinstance(script[0], WireReply):
        return script.pop(0)  # a raw reply (a dropped connection and the like)
    request = httpx.Request(
        recorded.method,
        f"http://127.0.0.1{recorded.path}",
        headers=recorded.headers,
        content=recorded.body,
    )
    response = served.fake.transport.handle_request(request)
    body = response.read()
    served.sent.append(body)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED}
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [event + b"\n\n" for event in body.split(b"\n\n") if event]
        return WireReply(response.status_code, headers=headers, chunks=events, chunk_delay=0.002)
    return WireReply(response.status_code, headers=headers, body=body)


@contextmanager
def served(script: Sequence[ScriptItem | WireReply]) -> Iterator[Served]:
    """Serve `script` (`FakeServer` items, or raw `support.local_server.Reply`s) on 127.0.0.1."""
    fake = FakeServer(list(script))  # pyright: ignore[reportArgumentType]
    local = LocalServer()
    server = Served(local, fake)
    local.handler = lambda recorded: _answer(server, recorded)
    with local:
        yield server
