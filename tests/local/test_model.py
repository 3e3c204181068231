"""`LocalModel`: a server that dies during a request or a stream is a `LocalServerError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.local_fakes import fake

from agentloop import Agent, APIConnectionError, ModelSettings
from agentloop.local import LocalModel, LocalServerError, free_port
from agentloop.local._model import describe_exit


@pytest.mark.anyio
async def test_a_server_that_dies_during_a_request_raises_local_server_error(
    weights: Path,
) -> None:
    with fake(weights, "segfault-on-request") as server:
        agent = Agent(server.model(max_retries=0), settings=ModelSettings(temperature=0.0))
        with pytest.raises(LocalServerError) as caught:
            await agent.run("hi")
    error = caught.value
    assert error.exit_code == -11 and "while it answered a request" in str(error)
    assert error.last_line == "llama_decode: GGML_ASSERT(ok) failed"
    assert isinstance(error.__cause__, APIConnectionError)
    assert not isinstance(error.__cause__, LocalServerError)


@pytest.mark.anyio
async def test_a_server_that_dies_during_a_stream_raises_local_server_error(
    weights: Path,
) -> None:
    with fake(weights, "segfault-on-request") as server:
        agent = Agent(server.model())  # with the default retries
        with pytest.raises(LocalServerError, match=r"-11 \(SIGSEGV\)"):
            await drain(agent)


async def drain(agent: Agent[Any]) -> None:
    async with agent.run_stream("hi") as stream:
        async for _ in stream:
            pass


async def _never_dead() -> LocalServerError | None:
    return None


async def _dead() -> LocalServerError | None:
    return LocalServerError.exited("llama-server", -4, "a\nlast words\n", when="during a test")


@pytest.mark.anyio
async def test_the_model_converts_a_connection_error_only_when_the_process_died() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens
    alive = LocalModel("m", base_url=url, died=_never_dead, max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        await Agent(alive).run("hi")
    assert not isinstance(caught.value, LocalServerError)
    dead = LocalModel("m", base_url=url, died=_dead, max_retries=0)
    with pytest.raises(LocalServerError, match=r"-4 \(SIGILL\) during a test") as converted:
        await Agent(dead).run("hi")
    assert converted.value.last_line == "last words"
    with pytest.raises(LocalServerError, match="SIGILL"):
        await drain(Agent(dead))


def test_describe_exit() -> None:
    assert describe_exit(-11) == "-11 (SIGSEGV)" and describe_exit(-4) == "-4 (SIGILL)"
    assert describe_exit(0) == "0" and describe_exit(-200) == "-200"
