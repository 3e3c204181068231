"""Streamed runs: same results as `run`, events in order, errors, backpressure.

Everything goes through the real request building and SSE parsing, behind `FakeServer` or a
MockTransport whose SSE body can pause and reports when it is closed (cancellation tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel
from support.scripted import add

from agentloop import Agent, tool
from agentloop._errors import AgentloopError, APIStatusError, UsageError
from agentloop._events import (
    PartialOutput,
    RunFinished,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from agentloop._messages import AssistantMessage, ToolMessage
from agentloop._result import RunResult
from agentloop._wire.compatible import OpenAICompatible
from agentloop._wire.profiles import OPENAI_PROFILE
from agentloop.testing import FakeServer, Reply, error, reply, tool_call

pytestmark = pytest.mark.anyio


LIMIT = 10  # seconds any single test may take


@tool
def boom(x: int) -> int:
    """Always fails.

    Args:
        x: anything
    """
    raise ValueError(f"no {x}")


class City(BaseModel):
    name: str
    population: int


class Answer(BaseModel):
    title: str
    cities: list[City]


ANSWER = {"title": "big ones", "cities": [{"name": "Paris", "population": 2}]}


async def both(
    script: Callable[[], list[Any]], **agent_options: Any
) -> tuple[RunResult[Any], RunResult[Any], list[Any], FakeServer, FakeServer]:
    """The same scripted exchange run with `run` and with `run_stream`."""
    plain, streamed = FakeServer(script()), FakeServer(script())
    with anyio.fail_after(LIMIT):
        result = await Agent(plain.model(), **agent_options).run("question")
        async with Agent(streamed.model(), **agent_options).run_stream("question") as stream:
            events = [event async for event in stream]
    plain.assert_done()
    streamed.assert_done()
    assert all(body.get("stream") is not True for body in plain.requests)
    assert all(body.get("stream") is True for body in streamed.requests)
    return result, stream.result, events, plain, streamed


def assert_same(a: RunResult[Any], b: RunResult[Any]) -> None:
    assert a.output == b.output
    assert a.messages == b.messages
    assert a.usage == b.usage
    assert a.cost == b.cost
    assert len(a.requests) == len(b.requests) == a.usage.requests
    for x, y in zip(a.requests, b.requests, strict=True):
        assert (x.input_tokens, x.output_tokens) == (y.input_tokens, y.output_tokens)
    for result in (a, b):
        assert result.timing.latency > 0
        assert result.timing.time_to_first_token is not None
        assert result.timing.time_to_first_token <= result.timing.latency
        for stats in result.requests:
            assert stats.latency is not None and stats.time_to_first_token is not None
            assert 0 <= stats.time_to_first_token <= stats.latency


SCRIPTS: dict[str, tuple[Callable[[], list[Any]], dict[str, Any]]] = {
    "text": (lambda: [reply("hello there, a longer answer", cost=0.001)], {}),
    "tool_round": (
        lambda: [tool_call(("add", {"a": 2, "b": 3})), reply("five")],
        {"tools": [add]},
    ),
    "parallel_calls": (
        lambda: [
            tool_call(("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2}), ("boom", {"x": 1})),
            reply("done"),
        ],
        {"tools": [add, boom]},
    ),
    "native": (lambda: [reply(ANSWER)], {"output_type": Answer, "output_mode": "native"}),
    "tool_mode": (
        lambda: [tool_call(("final_result", ANSWER))],
        {"output_type": Answer, "output_mode": "tool"},
    ),
    "prompted": (lambda: [reply(ANSWER)], {"output_type": Answer, "output_mode": "prompted"}),
    "re_ask": (
        lambda: [reply({"title": "x", "cities": [{"name": 3}]}), reply(ANSWER)],
        {"output_type": Answer, "output_mode": "native"},
    ),
    "wrapped_list": (
        lambda: [reply({"result": [1, 2, 3]})],
        {"output_type": list[int], "output_mode": "native"},
    ),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_streamed_and_plain_runs_give_the_same_result(name: str) -> None:
    script, options = SCRIPTS[name]
    plain, streamed, events, _, _ = await both(script, **options)
    assert_same(plain, streamed)
    assert isinstance(events[-1], RunFinished)
    assert events[-1].result is streamed
    turns = [e for e in events if isinstance(e, TurnFinished)]
    assert [t.stats for t in turns] == list(streamed.requests)


async def test_cost_is_equal_and_reported() -> None:
    plain, streamed, *_ = await both(lambda: [reply("hi", cost=0.0125)])
    assert plain.cost == streamed.cost == pytest.approx(0.0125)


async def test_event_order_for_a_tool_round() -> None:
    _, result, events, _, _ = await both(
        lambda: [tool_call(("add", {"a": 20, "b": 22})), reply("the sum is 42")], tools=[add]
    )
    kinds = [type(e).__name__ for e in events]
    # first turn: the call starts, its arguments stream, the turn ends, then the tool runs
    first_turn = kinds[: kinds.index("TurnFinished") + 1]
    assert first_turn[0] == "ToolCallStarted"
    assert set(first_turn[1:-1]) == {"ToolArgumentsDelta"}
    assert kinds[len(first_turn)] == "ToolCallFinished"
    assert kinds[-2:] == ["TurnFinished", "RunFinished"]
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert (started.name, started.id) == ("add", "call_0_add")
    args = "".join(e.text for e in events if isinstance(e, ToolArgumentsDelta))
    assert json.loads(args) == {"a": 20, "b": 22}
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert (finished.id, finished.name, finished.result, finished.is_error) == (
        "call_0_add",
        "add",
        "42",
        False,
    )
    assert finished.duration >= 0
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "the sum is 42" == result.output
    assert sum(isinstance(e, TextDelta) for e in events) > 1  # really streamed in pieces
    turns = [e for e in events if isinstance(e, TurnFinished)]
    assert len(turns) == 2
    assert turns[0].response.message.tool_calls[0].name == "add"
    assert turns[1].stats.output_tokens == result.requests[1].output_tokens


async def test_failed_tool_is_reported_as_an_error_event() -> None:
    *_, events, _, _ = await both(
        lambda: [tool_call(("boom", {"x": 7})), reply("sorry")], tools=[boom]
    )
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert len(finished) == 1
    assert finished[0].is_error
    assert "no 7" in finished[0].result


async def test_partial_output_events_grow_to_the_output() -> None:
    cities = [{"name": f"city{i}", "population": 1000 + 37 * i} for i in range(30)]
    full = {"title": "many", "cities": cities}
    _, result, events, _, _ = await both(
        lambda: [reply(full)], output_type=Answer, output_mode="native"
    )
    partials = [e.value for e in events if isinstance(e, PartialOutput)]
    assert len(partials) >= 3
    counts = [len(p.cities or []) for p in partials]
    assert counts == sorted(counts)  # only ever grows
    for value in partials:
        assert value.title in (None, "many")
        for got, want in zip(value.cities or [], cities, strict=False):
            # every field present is complete: never a cut string or a cut number
            assert got.name in (None, want["name"])
            assert got.population in (None, want["population"])
    assert partials[-1].model_dump() == full  # the last partial is the whole value
    assert result.output == Answer.model_validate(full)
    last_partial = max(i for i, e in enumerate(events) if isinstance(e, PartialOutput))
    assert last_partial < next(i for i, e in enumerate(events) if isinstance(e, TurnFinished))


async def collect(stream: Any, into: list[Any]) -> None:
    async with stream:
        async for event in stream:
            into.append(event)


async def test_run_error_is_raised_from_the_iteration_with_transcript() -> None:
    server = FakeServer([tool_call(("add", {"a": 1, "b": 1})), error(401, "bad key")])
    seen: list[Any] = []
    with anyio.fail_after(LIMIT):
        stream = Agent(server.model(max_retries=0), tools=[add]).run_stream("q")
        with pytest.raises(APIStatusError) as caught:
            await collect(stream, seen)
    assert caught.value.status_code == 401
    assert isinstance(caught.value, AgentloopError)
    assert [m.role for m in caught.value.messages] == ["user", "assistant", "tool"]
    assert caught.value.usage is not None and caught.value.usage.requests == 1
    assert any(isinstance(e, ToolCallFinished) for e in seen)
    assert not any(isinstance(e, RunFinished) for e in seen)
    with pytest.raises(UsageError):
        _ = stream.result


async def test_result_before_the_end_and_iteration_outside_the_block_are_usage_errors() -> None:
    server = FakeServer([reply("hi")])
    stream = Agent(server.model()).run_stream("q")
    with pytest.raises(UsageError):
        await stream.__anext__()
    async with stream:
        with pytest.raises(UsageError):
            _ = stream.result
        last = [e async for e in stream][-1]
        assert isinstance(last, RunFinished) and last.result.output == "hi"
    assert stream.result.output == "hi"


def chunk_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class WatchedStream(httpx.AsyncByteStream):
    """An SSE body whose reads, pauses and closing the test can observe (an iterator class, not
    an async generator, so nothing is left for the garbage collector to finalize)."""

    def __init__(self, chunks: list[bytes], *, hang_after: int | None = None) -> None:
        self.chunks = chunks
        self.hang_after = hang_after
        self.sent = 0
        self.closed = anyio.Event()
        self.hanging = anyio.Event()

    def __aiter__(self) -> WatchedStream:
        return self

    async def __anext__(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        if self.sent == self.hang_after:
            self.hanging.set()
            await anyio.sleep_forever()
        if self.sent >= len(self.chunks):
            raise StopAsyncIteration
        self.sent += 1
        return self.chunks[self.sent - 1]

    async def aclose(self) -> None:
        self.closed.set()


def watched_model(bodies: list[WatchedStream]) -> OpenAICompatible:
    queue = list(bodies)

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=queue.pop(0)
        )

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return OpenAICompatible(
        "m",
        base_url="http://fake.test/v1",
        api_key="sk-test",
        http_client=client,
        profile=OPENAI_PROFILE,
        max_retries=0,
    )


def text_chunks(n: int) -> list[bytes]:
    body = [chunk_event({"role": "assistant", "content": ""})]
    body += [chunk_event({"content": f"w{i} "}) for i in range(n)]
    return [*body, chunk_event({}, "stop"), b"data: [DONE]\n\n"]


async def test_a_consumer_that_does_not_read_blocks_the_producer() -> None:
    body = WatchedStream(text_chunks(5000))
    with anyio.fail_after(LIMIT):
        async with Agent(watched_model([body])).run_stream("q") as stream:
            receive = stream._receive  # pyright: ignore[reportPrivateUsage]
            assert receive is not None
            for _ in range(50):  # let the producer run as far as it can
                await anyio.sleep(0.002)
            stats = receive.statistics()
            assert stats.current_buffer_used == stats.max_buffer_size == 64
            assert body.sent < 200  # the HTTP body is not read ahead either
            stalled = body.sent
            await anyio.sleep(0.02)
            assert body.sent == stalled
            events = [event async for event in stream]
    assert body.sent == len(body.chunks)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "".join(f"w{i} " for i in range(5000)) == stream.result.output


def tool_chunks(name: str, args: str, *, id_: str = "call_1") -> list[bytes]:
    first = {"index": 0, "id": id_, "type": "function", "function": {"name": name, "arguments": ""}}
    body = [chunk_event({"role": "assistant", "tool_calls": [first]})]
    body += [
        chunk_event({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 3]}}]})
        for i in range(0, len(args), 3)
    ]
    return [*body, chunk_event({}, "tool_calls"), b"data: [DONE]\n\n"]


@pytest.mark.parametrize("stage", ["before_first_event", "mid_text", "after_run_finished"])
async def test_leaving_early_closes_the_http_stream(stage: str) -> None:
    hang = {"before_first_event": 0, "mid_text": 5, "after_run_finished": None}[stage]
    body = WatchedStream(text_chunks(10), hang_after=hang)
    seen: list[Any] = []
    with anyio.fail_after(LIMIT):
        async with Agent(watched_model([body])).run_stream("q") as stream:
            if stage == "before_first_event":
                await body.hanging.wait()
            else:
                async for event in stream:
                    seen.append(event)
                    if stage == "mid_text" and len(seen) == 3:
                        break
        assert body.closed.is_set()  # closed by the time the block is left
    if stage == "mid_text":
        assert all(isinstance(e, TextDelta) for e in seen)
        with pytest.raises(UsageError):
            _ = stream.result
    if stage == "after_run_finished":
        assert isinstance(seen[-1], RunFinished)
        assert stream.result.output == "".join(f"w{i} " for i in range(10))
    if stage == "before_first_event":
        assert stream.messages[-1].role == "user"


async def test_leaving_mid_tool_arguments_closes_the_stream() -> None:
    body = WatchedStream(tool_chunks("add", '{"a": 1, "b": 2}'), hang_after=4)
    with anyio.fail_after(LIMIT):
        async with Agent(watched_model([body]), tools=[add]).run_stream("q") as stream:
            async for event in stream:
                if isinstance(event, ToolArgumentsDelta):
                    break
        assert body.closed.is_set()
    # the call never completed, so no assistant message with a dangling tool call
    assert not any(isinstance(m, AssistantMessage) for m in stream.messages)


def slow_tool(started: anyio.Event, cancelled: anyio.Event) -> Any:
    @tool
    async def wait(seconds: int) -> str:
        """Wait a long time.

        Args:
            seconds: how long
        """
        started.set()
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return "waited"

    return wait


def answered_ids(messages: list[Any]) -> tuple[list[str], list[str]]:
    asked = [c.id for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls]
    answered = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
    return asked, answered


async def test_leaving_while_a_tool_runs_cancels_it_and_answers_every_call() -> None:
    started, cancelled = anyio.Event(), anyio.Event()
    first = {"index": 0, "id": "c1", "type": "function", "function": {"name": "wait"}}
    second = {"index": 1, "id": "c2", "type": "function", "function": {"name": "add"}}
    chunks = [
        chunk_event({"role": "assistant", "tool_calls": [first]}),
        chunk_event({"tool_calls": [{"index": 0, "function": {"arguments": '{"seconds": 60}'}}]}),
        chunk_event({"tool_calls": [second]}),
        chunk_event({"tool_calls": [{"index": 1, "function": {"arguments": '{"a":1,"b":2}'}}]}),
        chunk_event({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    body = WatchedStream(chunks)
    agent = Agent(watched_model([body]), tools=[slow_tool(started, cancelled), add])
    with anyio.fail_after(LIMIT):
        async with agent.run_stream("q") as stream:
            async for event in stream:
                if isinstance(event, TurnFinished):
                    break
            await started.wait()
        assert cancelled.is_set()
    assert body.closed.is_set()
    asked, answered = answered_ids(stream.messages)
    assert asked == ["c1", "c2"]
    assert sorted(answered) == ["c1", "c2"]
    by_id = {m.tool_call_id: m for m in stream.messages if isinstance(m, ToolMessage)}
    assert by_id["c1"].is_error
    assert "cancelled" in by_id["c1"].content


async def test_cancelling_the_enclosing_task_cancels_stream_and_tool() -> None:
    started, cancelled = anyio.Event(), anyio.Event()
    tool_body = WatchedStream(tool_chunks("wait", '{"seconds": 60}', id_="c9"))
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            holder: list[Any] = []

            async def consume() -> None:
                agent = Agent(watched_model([tool_body]), tools=[slow_tool(started, cancelled)])
                async with agent.run_stream("q") as stream:
                    holder.append(stream)
                    async for _ in stream:
                        pass

            tg.start_soon(consume)
            await started.wait()
            tg.cancel_scope.cancel()
    assert cancelled.is_set()
    asked, answered = answered_ids(holder[0].messages)
    assert asked == answered == ["c9"]


async def test_cancelling_mid_stream_closes_the_http_response() -> None:
    body = WatchedStream(text_chunks(10), hang_after=3)
    with anyio.fail_after(LIMIT):
        with anyio.CancelScope() as scope:
            async with Agent(watched_model([body])).run_stream("q") as stream:
                async for event in stream:
                    assert isinstance(event, TextDelta)
                    await body.hanging.wait()
                    scope.cancel()
        assert scope.cancelled_caught
        assert body.closed.is_set()


def test_run_stream_sync_calls_back_per_event_and_returns_the_result() -> None:
    server = FakeServer([tool_call(("add", {"a": 4, "b": 5})), reply("nine it is")])
    events: list[Any] = []
    result = Agent(server.model(), tools=[add]).run_stream_sync("q", on_event=events.append)
    server.assert_done()
    assert result.output == "nine it is"
    assert isinstance(events[-1], RunFinished) and events[-1].result is result
    assert any(isinstance(e, ToolCallFinished) and e.result == "9" for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "nine it is"


def test_run_stream_sync_stops_when_the_callback_raises() -> None:
    body = WatchedStream(text_chunks(10), hang_after=4)

    def stop(event: Any) -> None:
        raise LookupError("enough")

    with pytest.raises(LookupError, match="enough"):
        Agent(watched_model([body])).run_stream_sync("q", on_event=stop)
    assert body.closed.is_set()


async def test_run_stream_sync_inside_an_event_loop_is_a_usage_error() -> None:
    server = FakeServer([])
    with pytest.raises(UsageError, match="event loop"):
        Agent(server.model()).run_stream_sync("q", on_event=print)


async def test_leaving_early_closes_a_real_socket() -> None:
    from tests.support.local_server import LocalServer, sse
    from tests.support.local_server import Reply as ServerReply

    first = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hello"}}]}
    with LocalServer() as server:
        # one text chunk, then keep-alive comments every 10 ms until the client goes away
        server.script(
            ServerReply.stream(sse(first, done=False), forever=b": ping\n\n", chunk_delay=0.01)
        )
        model = OpenAICompatible("m", base_url=server.base_url, api_key="sk-local", max_retries=0)
        with anyio.fail_after(LIMIT):
            async with Agent(model).run_stream("q") as stream:
                async for event in stream:
                    assert event == TextDelta("hello")
                    break
            idle = await anyio.to_thread.run_sync(server.wait_idle, 3.0)
            await model.aclose()
    assert idle  # the server saw the connection go away
    assert server.connections == 1


async def test_a_refusal_streams_refusal_deltas_and_ends_both_runs_alike() -> None:
    from agentloop._errors import RefusalError
    from agentloop._events import RefusalDelta

    words = "I can not help with that request, sorry."
    plain_server = FakeServer([Reply(refusal=words)])
    streamed_server = FakeServer([Reply(refusal=words)])
    with pytest.raises(RefusalError) as plain:
        await Agent(plain_server.model()).run("q")
    seen: list[Any] = []
    stream = Agent(streamed_server.model()).run_stream("q")
    with pytest.raises(RefusalError) as streamed:
        await collect(stream, seen)
    assert "".join(e.text for e in seen if isinstance(e, RefusalDelta)) == words
    assert sum(isinstance(e, RefusalDelta) for e in seen) > 1
    assert streamed.value.messages == plain.value.messages
    assert streamed.value.usage == plain.value.usage
    assert streamed.value.messages[-1].refusal == words  # type: ignore[union-attr]


async def test_a_stream_held_open_after_done_ends_at_once_and_drops_its_connection() -> None:
    """Reading past ``[DONE]`` (to keep the connection) is bounded: a server that keeps the
    body open costs its connection, not the caller's time."""
    from tests.support.local_server import LocalServer, sse
    from tests.support.local_server import Reply as ServerReply

    first = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
    held = ServerReply.stream(sse(first), forever=b": ping\n\n", chunk_delay=0.01)
    with LocalServer() as server:
        server.script(held, held)
        model = OpenAICompatible("m", base_url=server.base_url, api_key="sk-local", max_retries=0)
        with anyio.fail_after(LIMIT):
            for _ in range(2):
                started = anyio.current_time()
                async with Agent(model).run_stream("q") as stream:
                    texts = [e.text async for e in stream if isinstance(e, TextDelta)]
                assert texts == ["hi"] and anyio.current_time() - started < 2
            await model.aclose()
    assert server.connections == 2
