"""The `Order` output type shared by the structured-output tests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Item(BaseModel):
    name: str
    qty: int


class Order(BaseModel):
    """An order with its items."""

    customer: str
    items: list[Item]
    priority: Literal["low", "high"] = "low"


ORDER = {"customer": "Ada", "items": [{"name": "tea", "qty": 2}], "priority": "high"}
