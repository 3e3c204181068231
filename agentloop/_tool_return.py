"""What a tool returns beyond text: images for the model to look at.

A tool returns an `Image`, or a `ToolReturn` (a value for the model to read, and images). Chat
completions take images only in user turns, so the tool's answer is the value's text plus one line
per image, and the images go to the model in one user turn after the turn's tool answers, named by
tool and call. That happens only for a model that takes images (the catalog's ``images`` flag;
`register_model` sets it for others, a local vision model for example); for any other model, and
for an image too large or of a type the API does not take, the line says it is not shown, so that
nothing is sent that the server would refuse.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._messages import ToolCall, UserMessage

__all__ = [
    "IMAGE_TYPES",
    "MAX_IMAGE_BYTES",
    "Image",
    "Numbered",
    "ToolReturn",
    "image_lines",
    "images_turn",
    "split_return",
]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The image types the chat completions API takes."""
MAX_IMAGE_BYTES = 10_000_000
"""An image larger than this is not shown (the API's own limit is 20 MB per request)."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image a tool returns: its bytes and its media type (``image/png``, ``image/jpeg``...)."""

    data: bytes
    media_type: str

    def __repr__(self) -> str:
        return f"Image({self.media_type!r}, {len(self.data):,} bytes)"

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True, slots=True)
class ToolReturn:
    """A tool's result with images: the model reads `value` (text, or JSON of any other value)
    as the tool's answer and sees `images` on its next turn, if it takes images."""

    value: Any = ""
    images: tuple[Image, ...] = ()


def split_return(value: Any) -> tuple[Any, tuple[Image, ...]]:
    """A tool's return value as (what the model reads, the images it returned)."""
    if isinstance(value, Image):
        return "", (value,)
    if isinstance(value, ToolReturn):
        return value.value, value.images
    return value, ()


Numbered = tuple[tuple[int, Image], ...]
"""Images with their numbers in the tool's answer (1, 2, ...)."""


def image_lines(images: Sequence[Image], shown: bool) -> tuple[str, Numbered]:
    """One line per image for the tool's answer, and the images that go to the model."""
    lines: list[str] = []
    sent: list[tuple[int, Image]] = []
    for number, image in enumerate(images, 1):
        about = f"[image {number}: {image.media_type}, {len(image.data):,} bytes"
        why = _not_shown(image, shown)
        if why:
            lines.append(f"{about}; not shown: {why}]")
        else:
            lines.append(f"{about}; shown in the next message]")
            sent.append((number, image))
    return "\n".join(lines), tuple(sent)


def _not_shown(image: Image, shown: bool) -> str:
    if not shown:
        return "this model does not take images"
    if image.media_type not in IMAGE_TYPES:
        return "not a type the API takes (PNG, JPEG, GIF, WebP)"
    if len(image.data) > MAX_IMAGE_BYTES:
        return f"larger than {MAX_IMAGE_BYTES:,} bytes"
    return ""


def images_turn(shown: Sequence[tuple[ToolCall, Numbered]]) -> UserMessage:
    """The user turn that shows the model the images of a turn's tool answers."""
    parts: list[dict[str, Any]] = []
    for call, images in shown:
        for number, image in images:
            label = f"Image {number} from the tool {call.name!r} (call {call.id}):"
            parts.append({"type": "text", "text": label})
            parts.append({"type": "image_url", "image_url": {"url": image.data_url()}})
    return UserMessage(tuple(parts))
