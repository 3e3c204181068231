"""The strict transform: any JSON schema to OpenAI's strict subset, or a list of why not.

`to_strict` is a pure function of a schema dict, used for tool parameters and for output schemas.
What strict mode cannot express structurally but our own validation still enforces (bounds,
lengths, patterns, formats, tuple positions) moves into the description as text, so the model
still sees it; such a schema stays *lossless*. What strict mode cannot express at all (free-form
dicts, ``not``, ``if``/``then``/``else``, ambiguous ``oneOf``, "any value") makes it *lossy*: the
problems say where, and the caller sends the schema non-strict instead.

Strict rules followed: every object has ``additionalProperties: false`` and lists every property
in ``required`` (a property that was optional becomes nullable; its default is recorded so that a
``null`` can be turned back into the default); ``$ref`` with siblings and ``allOf`` of one are
merged; ``const`` becomes a one-value ``enum``; ``title``, ``default`` and annotations are dropped;
``$defs`` and recursion are kept, unused definitions pruned. Limits raise `SchemaError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from ._schema_limits import check_limits, check_tool_count, prune_defs
from ._schema_walk import (
    NO_CONSTANT,
    admits_null,
    as_schema,
    constant_of,
    exclusive_branches,
    is_array,
    is_object,
    resolve_ref,
)
from ._strict_result import StrictResult

__all__ = ["StrictResult", "check_tool_count", "to_strict"]

# Dropped without a trace: annotations and keywords with no meaning for the model.
_SILENT = frozenset(
    {
        "title",
        "default",
        "examples",
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "discriminator",
        "readOnly",
        "writeOnly",
        "deprecated",
        "nullable",
    }
)
# Constraints strict mode may not accept; told to the model in the description instead.
_TEXT_LABELS = {
    "format": "format",
    "pattern": "pattern",
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive minimum",
    "exclusiveMaximum": "exclusive maximum",
    "multipleOf": "multiple of",
    "minLength": "minimum length",
    "maxLength": "maximum length",
    "minItems": "minimum items",
    "maxItems": "maximum items",
    "uniqueItems": "unique items",
    "minProperties": "minimum properties",
    "maxProperties": "maximum properties",
    "contentEncoding": "encoding",
    "contentMediaType": "media type",
}
# Keywords strict mode cannot express at all.
_LOSSY = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "patternProperties",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "additionalItems",
    }
)


def to_strict(schema: Mapping[str, Any]) -> StrictResult:
    """Transform `schema` to the strict subset. Raises `SchemaError` beyond the API's limits."""
    state = _Transform(dict(schema))
    root = state.root_node()
    result = prune_defs(root)
    check_limits(result)
    return StrictResult(result, not state.problems, state.problems, state.defaults)


class _Transform:
    """One run of the transform; collects problems and defaults as it goes."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.problems: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.inlining: list[str] = []

    def problem(self, pointer: str, text: str) -> None:
        self.problems.append(f"{pointer or '/'}: {text}")

    def root_node(self) -> dict[str, Any]:
        node = dict(self.root)
        defs = {key: node.pop(key) for key in ("$defs", "definitions") if key in node}
        if "$ref" in node:
            node = self.merge_ref(node, "")
        out = self.node(node, "", is_root=True)
        if out.get("type") != "object" or "anyOf" in out:
            self.problem("", "the root must be an object (not a union or another type)")
        for key, named in defs.items():
            if isinstance(named, Mapping):
                entries = cast(Mapping[str, Any], named).items()
                out[key] = {name: self.node(sub, f"/{key}/{name}") for name, sub in entries}
        return out

    def merge_ref(self, node: dict[str, Any], pointer: str) -> dict[str, Any]:
        ref = str(node.pop("$ref"))
        target = resolve_ref(self.root, ref)
        if target is None:
            self.problem(pointer, f"cannot resolve $ref {ref!r}")
            return node
        target.pop("$defs", None)
        target.pop("definitions", None)
        return {**target, **node}

    def node(self, schema: Any, pointer: str, *, is_root: bool = False) -> dict[str, Any]:
        node = as_schema(schema)
        if node is None:
            self.problem(pointer, f"boolean schema {json.dumps(schema)}")
            return {}
        if "$ref" in node and set(node) - _SILENT - {"$ref"}:
            return self.ref_with_siblings(node, pointer, is_root)
        if "$ref" in node:
            return {"$ref": node["$ref"]}
        if "allOf" in node:
            return self.node(self.merge_all_of(node, pointer), pointer, is_root=is_root)
        return self.plain(node, pointer, is_root)

    def ref_with_siblings(self, node: dict[str, Any], pointer: str, is_root: bool):
        """Inline the target merged with the siblings; inside itself, a one-branch anyOf."""
        ref = str(node["$ref"])
        if ref in self.inlining:  # recursion: keep the ref, keep the description beside it
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            out = self.plain({**siblings, "anyOf": [{"$ref": ref}]}, pointer, is_root)
            return {k: v for k, v in out.items() if k in ("anyOf", "description")}
        self.inlining.append(ref)
        try:
            return self.node(self.merge_ref(node, pointer), pointer, is_root=is_root)
        finally:
            self.inlining.pop()

    def merge_all_of(self, node: dict[str, Any], pointer: str) -> dict[str, Any]:
        parts = cast(list[Any], node.pop("allOf"))
        if len(parts) != 1:
            self.problem(pointer, f"allOf with {len(parts)} schemas")
            return node
        first = as_schema(parts[0]) or {}
        clash = (set(first) & set(node)) - _SILENT - {"description"}
        if clash:
            self.problem(pointer, f"allOf overlaps its siblings on {sorted(clash)}")
        return {**first, **node}

    def plain(self, node: dict[str, Any], pointer: str, is_root: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        notes: list[str] = []
        self.keywords(node, pointer, out, notes)
        if "const" in node:
            out["enum"] = [node["const"]]
        _merge_bounds(notes)
        self.union(node, pointer, out)
        if is_object(node):
            self.object(node, pointer, out, is_root)
        if is_array(node):
            self.array(node, pointer, out, notes)
        if not set(out) & {"type", "enum", "anyOf", "$ref"}:
            self.problem(pointer, "accepts any value (no type)")
        description = _describe(node.get("description"), notes)
        if description:
            out["description"] = description
        if node.get("nullable") is True:
            out = _nullable(out)
        return out

    def keywords(self, node: dict[str, Any], pointer: str, out: dict[str, Any], notes: list[str]):
        for key, value in node.items():
            if key in _TEXT_LABELS:
                notes.append(_constraint(key, value))
            elif key in _LOSSY:
                self.problem(pointer, f"keyword {key!r} is not supported in strict mode")
            elif key == "type":
                out["type"] = value
            elif key == "enum":
                out["enum"] = list(cast(list[Any], value))

    def union(self, node: dict[str, Any], pointer: str, out: dict[str, Any]) -> None:
        branches: list[Any] = []
        if "oneOf" in node:
            one_of = cast(list[Any], node["oneOf"])
            if not exclusive_branches(one_of, self.root):
                self.problem(pointer, "oneOf whose branches may overlap cannot become anyOf")
            branches += [(sub, f"{pointer}/oneOf/{i}") for i, sub in enumerate(one_of)]
        if "anyOf" in node:
            any_of = cast(list[Any], node["anyOf"])
            branches += [(sub, f"{pointer}/anyOf/{i}") for i, sub in enumerate(any_of)]
        if branches:
            out["anyOf"] = [self.node(sub, where) for sub, where in branches]

    def object(self, node: dict[str, Any], pointer: str, out: dict[str, Any], is_root: bool):
        props = cast(Mapping[str, Any], node.get("properties") or {})
        extra = node.get("additionalProperties")
        if extra not in (None, False):
            self.problem(pointer, "free-form object (additionalProperties) is not supported")
        elif extra is None and not props and not is_root:
            self.problem(pointer, "object without properties (free-form) is not supported")
        required = set(cast(list[str], node.get("required") or []))
        properties: dict[str, Any] = {}
        for name, sub in props.items():
            where = f"{pointer}/properties/{_escape(name)}"
            strict_sub = self.node(sub, where)
            if name not in required and constant_of(sub) is not NO_CONSTANT:
                pass  # a constant: the model can always send it (and tagged unions need it)
            elif name not in required and not admits_null(sub, self.root):
                strict_sub = _nullable(strict_sub)
            if name not in required and isinstance(sub, Mapping) and "default" in sub:
                self.defaults[where] = cast(Mapping[str, Any], sub)["default"]
            properties[name] = strict_sub
        out["type"] = _with_object_type(out.get("type"))
        out["properties"] = properties
        out["required"] = list(properties)
        out["additionalProperties"] = False

    def array(self, node: dict[str, Any], pointer: str, out: dict[str, Any], notes: list[str]):
        items = node.get("items")
        prefix = cast(list[Any], node.get("prefixItems") or [])
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = cast(list[Any], items), None
        if prefix:
            if items not in (None, False):
                self.problem(pointer, "a tuple with extra items is not supported")
            branches = [
                self.node(sub, f"{pointer}/prefixItems/{i}") for i, sub in enumerate(prefix)
            ]
            out["items"] = _one_of_each(branches)
            notes.insert(0, "items in order: " + ", ".join(_brief(b) for b in branches))
        elif items is None or items is True or as_schema(items) == {}:
            self.problem(pointer, "array items accept any value")
            out["items"] = {}
        else:
            out["items"] = self.node(items, f"{pointer}/items")


def _with_object_type(kind: Any) -> Any:
    if kind is None:
        return "object"
    return kind


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _constraint(key: str, value: Any) -> str:
    label = _TEXT_LABELS[key]
    if key == "uniqueItems":
        return label if value else "items may repeat"
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"{label} {shown}"


def _merge_bounds(notes: list[str]) -> None:
    """Say "exactly 2 items" rather than "minimum items 2, maximum items 2"."""
    for what, unit in (("items", "items"), ("length", "characters")):
        low = next((n for n in notes if n.startswith(f"minimum {what} ")), None)
        high = next((n for n in notes if n.startswith(f"maximum {what} ")), None)
        if low and high and low.rsplit(" ", 1)[1] == high.rsplit(" ", 1)[1]:
            notes[notes.index(low)] = f"exactly {low.rsplit(' ', 1)[1]} {unit}"
            notes.remove(high)


def _describe(description: Any, notes: list[str]) -> str:
    text = description.strip() if isinstance(description, str) else ""
    if notes:
        constraints = "Constraints: " + ", ".join(notes) + "."
        text = f"{text}\n{constraints}" if text else constraints
    return text


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` extended to accept null, as ``anyOf [..., {"type": "null"}]``."""
    inner = dict(schema)
    description = inner.pop("description", None)
    if set(inner) == {"anyOf"}:
        branches = [*cast(list[Any], inner["anyOf"]), {"type": "null"}]
    else:
        branches = [inner, {"type": "null"}]
    out: dict[str, Any] = {"anyOf": branches}
    if description:
        out["description"] = description
    return out


def _one_of_each(branches: list[dict[str, Any]]) -> dict[str, Any]:
    unique: dict[str, dict[str, Any]] = {}
    for branch in branches:
        unique.setdefault(json.dumps(branch, sort_keys=True), branch)
    values = list(unique.values())
    return values[0] if len(values) == 1 else {"anyOf": values}


def _brief(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(str(k) for k in cast(list[Any], kind))
    if "enum" in schema:
        return "one of " + json.dumps(schema["enum"])
    return str(kind) if kind is not None else "value"
