"""`StrictResult`, what the strict transform (`agentloop._schema`) returns.

A module of its own so that `Tool` can name it at runtime (`typing.get_type_hints(Tool)`) without
loading the transform, which `import agentloop` does not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StrictResult"]


@dataclass(slots=True)
class StrictResult:
    """The strict form of a schema.

    `lossless` is False when strict mode cannot express the schema; `problems` then says why
    (JSON pointers into the original schema). `defaults` maps the JSON pointer of each property
    that became required-and-nullable to its default, where the original schema gave one.
    """

    schema: dict[str, Any]
    lossless: bool
    problems: list[str] = field(default_factory=lambda: [])
    defaults: dict[str, Any] = field(default_factory=lambda: {})
