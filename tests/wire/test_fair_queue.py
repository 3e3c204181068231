"""The connection queue over real HTTP on 127.0.0.1: a retry keeps its turn, waits are reported."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import pytest
from support.local_server import LocalServer, Recorded, Reply, sse
from support.local_transport import OK, model_for, with_timeout

from agentloop import Agent, RunResult
from agentloop._errors import APITimeoutError
from agentloop._messages import ModelRequest, ModelResponse, UserMessage
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.slots import Slots

pytestmark = pytest.mark.anyio

STREAM = sse(
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
     "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]},
)  # fmt: skip


class Gates:
    """Answers held by name until the test opens their gate; "A" fails once with a 503."""

    def __init__(self, streamed: bool) -> None:
        self.gates = {name: threading.Event() for name in "ABC"}
        self.streamed = streamed
        self.failed_once = False

    def __call__(self, request: Recorded) -> Reply:
        name = request.json()["messages"][-1]["content"]
        gate = self.gates.get(name)
        if gate is not None and not (name == "A" and self.failed_once):
            gate.wait(10)
        if name == "A" and not self.failed_once:
            self.failed_once = True
            return Reply(503, json_body={"error": {"message": "busy"}})
        return Reply.stream(STREAM) if self.streamed else Reply(200, json_body=OK)


async def _ask(model, name: str, streamed: bool, answers: dict[str, ModelResponse]) -> None:
    request = ModelRequest((UserMessage(name),))
    if streamed:
        async with model.stream(request) as stream:
            async for _ in stream:
                pass
        answers[name] = stream.response
    else:
        answers[name] = await model.request(request)


async def _until(done: Callable[[], bool], state: Callable[[], object] = lambda: None) -> None:
    """Poll (the server answers on its own threads: no event of this loop says when)."""
    for _ in range(1000):
        if done():
            return
        await anyio.sleep(0.005)
    assert done(), state()


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
async def test_a_retry_is_served_before_requests_that_queued_after_its_first_attempt(streamed):
    gates = Gates(streamed)
    answers: dict[str, ModelResponse] = {}
    with LocalServer(gates) as server:
        model = model_for(server, max_connections=2)
        async with anyio.create_task_group() as tg:
            for name in "AB":  # A and B take the two connections
                tg.start_soon(_ask, model, name, streamed, answers)
                await _until(lambda n=name: _names(server)[-1:] == [n], lambda: _names(server))
            slots = _slots(model)
            for waiting, name in enumerate("CDE", 1):  # C, D, E wait, in this order
                tg.start_soon(_ask, model, name, streamed, answers)
                await _until(lambda n=waiting: slots.waiting == n, lambda: slots)
            gates.gates["A"].set()  # A fails: its connection goes to C, A waits to retry
            await _until(
                lambda: _names(server) == ["A", "B", "C"] and slots.waiting == 3,
                lambda: (_names(server), slots),
            )
            gates.gates["C"].set()  # C is done: its connection goes to A's retry, not to D
            await _until(lambda: len(_names(server)) >= 4, lambda: (_names(server), slots))
            gates.gates["B"].set()
        await model.aclose()
    names = _names(server)  # D and E race to the server once they have their connections
    assert names[:4] == ["A", "B", "C", "A"] and sorted(names[4:]) == ["D", "E"]
    assert answers["A"].retries == 1
    assert answers["A"].queue_wait > 0 and answers["E"].queue_wait > 0
    assert answers["B"].queue_wait == 0.0  # a free connection: no wait measured


async def test_a_timeout_says_how_long_the_request_waited_for_a_connection():
    release = threading.Event()

    def handle(request: Recorded) -> Reply:
        if request.json()["messages"][-1]["content"] == "first":
            release.wait(10)
            return Reply(200, json_body=OK)
        return Reply(200, json_body=OK, header_delay=2)  # past the second one's deadline

    with LocalServer(handle) as server:
        model = model_for(server, max_connections=1, retries=0)
        first = ModelRequest((UserMessage("first"),))
        second = ModelRequest((UserMessage("second"),), settings=with_timeout(0.2).settings)
        failures: list[BaseException] = []

        async def late() -> None:
            with pytest.raises(APITimeoutError) as caught:
                await model.request(second)
            failures.append(caught.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(model.request, first)
            await _until(lambda: len(server.requests) == 1)
            tg.start_soon(late)
            slots = _slots(model)
            await _until(lambda: slots.waiting == 1)
            await anyio.sleep(0.2)
            release.set()
        await model.aclose()
    assert "within the 0.2 s deadline (before it, the request waited" in str(failures[0])
    assert "s for a connection)" in str(failures[0])


async def test_a_run_adds_up_the_waits_of_its_requests():
    release = threading.Event()

    def handle(request: Recorded) -> Reply:
        if request.json()["messages"][-1]["content"] == "first":
            release.wait(10)
        return Reply(200, json_body=OK)

    results: dict[str, RunResult[str]] = {}
    with LocalServer(handle) as server:
        model = model_for(server, max_connections=1)
        agent = Agent(model)

        async def run(prompt: str) -> None:
            results[prompt] = await agent.run(prompt)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "first")
            await _until(lambda: len(server.requests) == 1)
            tg.start_soon(run, "second")
            slots = _slots(model)
            await _until(lambda: slots.waiting == 1)
            await anyio.sleep(0.05)
            release.set()
        await model.aclose()
    first, second = results["first"], results["second"]
    assert first.timing.queue_wait == 0.0 and first.requests[0].queue_wait == 0.0
    assert second.timing.queue_wait >= 0.05
    assert second.timing.queue_wait == sum(r.queue_wait for r in second.requests)
    assert second.timing.rate_wait == 0.0


def _names(server: LocalServer) -> list[str]:
    return [r.json()["messages"][-1]["content"] for r in server.requests]


def _slots(model: OpenAICompatible) -> Slots:
    slots = model._endpoint.transports.slots()
    assert slots is not None
    return slots
