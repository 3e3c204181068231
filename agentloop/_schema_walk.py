"""Small helpers that walk JSON schemas: keyword-aware mapping, local `$ref` resolution, cleaning.

A JSON schema mixes keywords (``type``, ``items``) with names (the keys of ``properties`` and
``$defs``); every walker here knows which is which, so a property called ``title`` survives
`clean_schema`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

__all__ = [
    "NO_CONSTANT",
    "SCHEMA_LISTS",
    "SCHEMA_MAPS",
    "SCHEMA_SINGLES",
    "admits_null",
    "as_schema",
    "clean_schema",
    "constant_of",
    "discriminated",
    "exclusive_branches",
    "is_array",
    "is_object",
    "map_subschemas",
    "resolve_ref",
    "resolved",
]

# Keywords whose value is a mapping of names to schemas.
SCHEMA_MAPS = frozenset(
    {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"}
)
# Keywords whose value is one schema.
SCHEMA_SINGLES = frozenset(
    {
        "items",
        "additionalProperties",
        "additionalItems",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
# Keywords whose value is a list of schemas.
SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})

_MAX_REF_HOPS = 64


def as_schema(value: object) -> dict[str, Any] | None:
    """`value` as a schema mapping, or None when it is a boolean schema or not a mapping."""
    if isinstance(value, Mapping):
        return dict(cast(Mapping[str, Any], value))
    return None


def map_subschemas(schema: Mapping[str, Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
    """A copy of `schema` with `fn` applied to every direct subschema (names left alone)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, Mapping):
            named = cast(Mapping[str, Any], value)
            out[key] = {name: fn(sub) for name, sub in named.items()}
        elif key in SCHEMA_SINGLES and isinstance(value, Mapping | bool):
            out[key] = fn(value)
        elif (key in SCHEMA_LISTS or key == "items") and isinstance(value, list):
            out[key] = [fn(sub) for sub in cast(list[Any], value)]  # "items": draft-07 tuples
        else:
            out[key] = value
    return out


def clean_schema(schema: Any) -> Any:
    """A copy of `schema` without ``title`` keywords (pydantic adds one per field: pure tokens)."""
    node = as_schema(schema)
    if node is None:
        return schema
    node.pop("title", None)
    return map_subschemas(node, clean_schema)


def resolve_ref(root: Mapping[str, Any], ref: str) -> dict[str, Any] | None:
    """The schema a local ``$ref`` (``#/...``) points to inside `root`, or None."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = cast(Mapping[str, Any], node)[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(cast(list[Any], node)):
            node = cast(list[Any], node)[int(part)]
        else:
            return None
    return as_schema(node)


def admits_null(schema: Any, root: Mapping[str, Any], hops: int = 0) -> bool:
    """Whether `schema` (inside `root`) accepts JSON ``null``. Unknown refs count as no."""
    if isinstance(schema, bool):
        return schema
    node = as_schema(schema)
    if node is None or hops > _MAX_REF_HOPS:
        return False
    if "$ref" in node:
        target = resolve_ref(root, str(node["$ref"]))
        if target is None or not admits_null(target, root, hops + 1):
            return False
    if node.get("nullable") is True:
        return True
    kind = node.get("type")
    if kind is not None and "null" not in (kind if isinstance(kind, list) else [kind]):
        return False
    if "const" in node and node["const"] is not None:
        return False
    if "enum" in node and None not in cast(list[Any], node["enum"]):
        return False
    for key in ("anyOf", "oneOf"):
        if key in node and not any(
            admits_null(sub, root, hops + 1) for sub in cast(list[Any], node[key])
        ):
            return False
    return all(admits_null(sub, root, hops + 1) for sub in cast(list[Any], node.get("allOf", [])))


def is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    kinds = cast(list[Any], kind) if isinstance(kind, list) else [kind]
    return "object" in kinds or "properties" in node


def is_array(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    kinds = cast(list[Any], kind) if isinstance(kind, list) else [kind]
    return "array" in kinds or "items" in node or "prefixItems" in node


def exclusive_branches(branches: list[Any], root: Mapping[str, Any]) -> bool:
    """Whether the branches of a oneOf can never both match (so anyOf means the same)."""
    targets = [resolved(sub, root) for sub in branches]
    if any(sub is None for sub in targets):
        return False
    nodes = cast(list[dict[str, Any]], targets)
    if all(is_object(sub) for sub in nodes):
        return discriminated(nodes)
    kinds: list[set[str]] = []
    for sub in nodes:
        kind = sub.get("type")
        if kind is None or is_object(sub) or is_array(sub):
            return False
        names = set(cast(list[str], kind)) if isinstance(kind, list) else {str(kind)}
        kinds.append(names | ({"number"} if "integer" in names else set()))
    return all(not (a & b) for i, a in enumerate(kinds) for b in kinds[i + 1 :])


def resolved(schema: Any, root: Mapping[str, Any]) -> dict[str, Any] | None:
    node = as_schema(schema)
    for _ in range(32):
        if node is None or "$ref" not in node:
            return node
        node = resolve_ref(root, str(node["$ref"]))
    return None


def discriminated(nodes: list[dict[str, Any]]) -> bool:
    """Whether some property holds a distinct constant in every branch."""
    tags: list[dict[str, Any]] = []
    for sub in nodes:
        props = cast(Mapping[str, Any], sub.get("properties") or {})
        required = set(cast(list[str], sub.get("required") or []))
        found: dict[str, Any] = {}
        for name, prop in props.items():
            value = constant_of(prop)
            if value is not NO_CONSTANT and (name in required or "default" in prop):
                found[name] = value
        tags.append(found)
    common: set[str] = set(tags[0]) if tags else set()
    for found in tags[1:]:
        common &= set(found)
    for name in sorted(common):
        values = [json.dumps(t[name], sort_keys=True) for t in tags]
        if len(set(values)) == len(values):
            return True
    return False


NO_CONSTANT = object()


def constant_of(prop: Any) -> Any:
    node = as_schema(prop)
    if node is None:
        return NO_CONSTANT
    if "const" in node:
        return node["const"]
    enum = node.get("enum")
    if isinstance(enum, list) and len(cast(list[Any], enum)) == 1:
        return cast(list[Any], enum)[0]
    return NO_CONSTANT
