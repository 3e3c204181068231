"""Tools that return images: shown to a model that takes them, in a user turn after the answers."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_durable import MemoryEngine

from agentloop import Agent, Image, ModelInfo, ToolReturn, UserMessage, register_model, tool
from agentloop._durable import durable_agent
from agentloop._tool_return import MAX_IMAGE_BYTES
from agentloop.testing import FakeServer, reply, tool_call

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
VISION = "vision-model-for-tests"
register_model(ModelInfo(VISION, images=True))


@tool
def chart(city: str) -> ToolReturn:
    """A chart of a city's weather.

    Args:
        city: the city.
    """
    return ToolReturn({"city": city, "points": 3}, (Image(PNG, "image/png"),))


@tool
def photo() -> Image:
    """A photo."""
    return Image(b"GIF89a", "image/gif")


@tool
def scan() -> ToolReturn:
    """A scan in two formats."""
    return ToolReturn("scanned", (Image(b"BM", "image/bmp"), Image(PNG, "image/png")))


def _sent(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["messages"]


async def test_a_model_that_takes_images_sees_them_after_the_tool_answers() -> None:
    script = [tool_call(("chart", {"city": "Oslo"}), ("photo", {})), reply("sunny")]
    with FakeServer(script, model_name=VISION) as server:
        result = await Agent(server.model(), tools=[chart, photo]).run("Weather?")
    second = _sent(server.requests[1])
    roles = [m["role"] for m in second]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    chart_answer, photo_answer = second[2]["content"], second[3]["content"]
    assert chart_answer.startswith('{"city":"Oslo","points":3}\n[image 1: image/png, 32 bytes;')
    assert photo_answer == "[image 1: image/gif, 6 bytes; shown in the next message]"
    parts = second[4]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[0]["text"] == "Image 1 from the tool 'chart' (call call_0_chart):"
    expected = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parts[1]["image_url"]["url"] == expected
    assert (
        parts[3]["image_url"]["url"]
        == "data:image/gif;base64," + base64.b64encode(b"GIF89a").decode()
    )
    assert isinstance(result.messages[4], UserMessage)  # the transcript keeps the images turn


async def test_a_model_that_does_not_take_images_is_told_so_and_sent_none() -> None:
    with FakeServer([tool_call(("chart", {"city": "Oslo"})), reply("ok")]) as server:
        await Agent(server.model(), tools=[chart]).run("Weather?")
    second = _sent(server.requests[1])
    assert [m["role"] for m in second] == ["user", "assistant", "tool"]
    assert second[2]["content"].endswith(
        "[image 1: image/png, 32 bytes; not shown: this model does not take images]"
    )
    assert "image_url" not in str(server.requests[1])


async def test_only_images_the_api_takes_are_sent_and_keep_their_numbers() -> None:
    with FakeServer([tool_call(("scan", {})), reply("ok")], model_name=VISION) as server:
        await Agent(server.model(), tools=[scan]).run("Scan it.")
    answer, shown = _sent(server.requests[1])[2:]
    assert answer["content"] == (
        "scanned\n[image 1: image/bmp, 2 bytes; not shown: not a type the API takes (PNG, "
        "JPEG, GIF, WebP)]\n[image 2: image/png, 32 bytes; shown in the next message]"
    )
    assert shown["content"][0]["text"] == "Image 2 from the tool 'scan' (call call_0_scan):"
    assert len(shown["content"]) == 2


async def test_an_image_over_the_cap_is_not_sent() -> None:
    @tool
    def huge() -> Image:
        """Too big."""
        return Image(b"\x00" * (MAX_IMAGE_BYTES + 1), "image/png")

    with FakeServer([tool_call(("huge", {})), reply("ok")], model_name=VISION) as server:
        await Agent(server.model(), tools=[huge]).run("go")
    answer = _sent(server.requests[1])[-1]
    assert answer["role"] == "tool"
    assert f"not shown: larger than {MAX_IMAGE_BYTES:,} bytes" in answer["content"]


def test_an_image_repr_does_not_dump_its_bytes() -> None:
    assert repr(Image(PNG, "image/png")) == "Image('image/png', 32 bytes)"


async def test_a_durable_run_replays_a_tools_images() -> None:
    engine = MemoryEngine()
    script = [tool_call(("chart", {"city": "Oslo"})), reply("ok")]
    with FakeServer(script, model_name=VISION) as server:
        first = await durable_agent(Agent(server.model(), tools=[chart]), engine).run("go")
    again = MemoryEngine(replay=engine.records)
    with FakeServer([], model_name=VISION) as idle:
        second = await durable_agent(Agent(idle.model(), tools=[chart]), again).run("go")
    assert second.messages == first.messages
    images = first.messages[-2]
    assert isinstance(images, UserMessage) and not isinstance(images.content, str)
    assert images.content[1]["image_url"]["url"].startswith("data:image/png;base64,")
