"""The strict-mode limits of the API, checked before a request is sent, and unused-`$defs` pruning.

Limits: nesting depth 10 (objects within objects, following ``$ref`` until recursion), 5,000
properties in total, 1,000 enum values in total, 120,000 characters of property names and string
enum values in total, and 128 tools per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ._errors import SchemaError
from ._schema_walk import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_SINGLES, as_schema, resolve_ref

__all__ = [
    "MAX_DEPTH",
    "MAX_ENUM_VALUES",
    "MAX_PROPERTIES",
    "MAX_STRING_CHARS",
    "MAX_TOOLS",
    "check_limits",
    "check_tool_count",
    "prune_defs",
]

MAX_DEPTH = 10
MAX_PROPERTIES = 5_000
MAX_ENUM_VALUES = 1_000
MAX_STRING_CHARS = 120_000
MAX_TOOLS = 128


def check_tool_count(count: int) -> None:
    """Raise `SchemaError` when one request would carry more tools than the API takes."""
    if count > MAX_TOOLS:
        raise SchemaError(f"{count} tools in one request; the API takes at most {MAX_TOOLS}")


def check_limits(schema: Mapping[str, Any]) -> None:
    """Raise `SchemaError` when a strict `schema` is beyond the API's limits."""
    totals = {"properties": 0, "enum": 0, "chars": 0}
    _count(schema, totals)
    if totals["properties"] > MAX_PROPERTIES:
        raise SchemaError(
            f"the schema has {totals['properties']:,} properties in total; "
            f"strict mode allows at most {MAX_PROPERTIES:,}"
        )
    if totals["enum"] > MAX_ENUM_VALUES:
        raise SchemaError(
            f"the schema has {totals['enum']:,} enum values in total; "
            f"strict mode allows at most {MAX_ENUM_VALUES:,}"
        )
    if totals["chars"] > MAX_STRING_CHARS:
        raise SchemaError(
            f"the schema's property names and enum values have {totals['chars']:,} characters "
            f"in total; strict mode allows at most {MAX_STRING_CHARS:,}"
        )
    depth = _depth(schema, schema, ())
    if depth > MAX_DEPTH:
        raise SchemaError(
            f"the schema nests objects {depth} levels deep; strict mode allows at most {MAX_DEPTH}"
        )


def _count(schema: Any, totals: dict[str, int]) -> None:
    node = as_schema(schema)
    if node is None:
        return
    props = node.get("properties")
    if isinstance(props, Mapping):
        names = list(cast(Mapping[str, Any], props))
        totals["properties"] += len(names)
        totals["chars"] += sum(len(name) for name in names)
    enum = node.get("enum")
    if isinstance(enum, list):
        values = cast(list[Any], enum)
        totals["enum"] += len(values)
        totals["chars"] += sum(len(v) for v in values if isinstance(v, str))
    for _, sub in _pairs(node):
        _count(sub, totals)


def _depth(schema: Any, root: Mapping[str, Any], refs: tuple[str, ...]) -> int:
    """Objects nested along the deepest path; a ``$ref`` already on the path ends it."""
    node = as_schema(schema)
    if node is None:
        return 0
    if "$ref" in node:
        ref = str(node["$ref"])
        target = resolve_ref(root, ref)
        if ref in refs or target is None:
            return 0
        return _depth(target, root, (*refs, ref))
    inner = [sub for key, sub in _pairs(node) if key not in ("$defs", "definitions")]
    deepest = max((_depth(sub, root, refs) for sub in inner), default=0)
    return deepest + (1 if "properties" in node else 0)


def _pairs(node: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, Mapping):
            out += [(key, sub) for sub in cast(Mapping[str, Any], value).values()]
        elif key in SCHEMA_SINGLES and isinstance(value, Mapping):
            out.append((key, cast(Any, value)))
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out += [(key, sub) for sub in cast(list[Any], value)]
    return out


def prune_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the ``$defs`` / ``definitions`` entries nothing refers to."""
    used: set[str] = set()
    pending: list[Any] = [{k: v for k, v in schema.items() if k not in ("$defs", "definitions")}]
    while pending:
        node = as_schema(pending.pop())
        if node is None:
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in used:
            used.add(ref)
            pending.append(resolve_ref(schema, ref))
        pending += [sub for key, sub in _pairs(node) if key not in ("$defs", "definitions")]
    out = dict(schema)
    for key in ("$defs", "definitions"):
        if isinstance(out.get(key), Mapping):
            named = cast(Mapping[str, Any], out[key])
            kept = {n: s for n, s in named.items() if f"#/{key}/{_escape(n)}" in used}
            if kept:
                out[key] = kept
            else:
                del out[key]
    return out


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
