"""Reading a tool call's raw arguments: JSON, null-to-default, validation, messages for the model.

Every failure raises `ArgumentProblems` with compact lines (``path: what was expected (got what
came)``), bounded in count and size; the tool turns them into an `InvalidArguments` signal.
Before failing, what has one reading is read so (`agentloop._argument_repair`): arguments written
as a Python literal, and for raw-schema tools the values Pydantic's lax mode would accept.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from ._argument_repair import lax_value, near_json
from ._json import loads
from ._schema_walk import admits_null, as_schema, resolve_ref

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from pydantic import BaseModel

__all__ = [
    "ArgumentProblems",
    "JsonSchemaArguments",
    "PydanticArguments",
    "fill_null_defaults",
    "load_arguments",
    "short",
]

_MAX_LINES = 8
_MAX_ECHO = 80
_MAX_LINE = 300


class ArgumentProblems(Exception):
    """The arguments were not acceptable; `lines` says why, one problem per line."""

    def __init__(self, lines: list[str]) -> None:
        shown = [_clip(line, _MAX_LINE) for line in lines[:_MAX_LINES]]
        if len(lines) > _MAX_LINES:
            shown.append(f"and {len(lines) - _MAX_LINES} more problems")
        super().__init__("; ".join(shown))
        self.lines = shown


def short(value: Any) -> str:
    """`value` as a short repr for an error message."""
    return _clip(repr(value), _MAX_ECHO)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def load_arguments(raw: str | None) -> dict[str, Any]:
    """Parse the raw JSON text of a call: missing, empty, whitespace or ``null`` mean ``{}``."""
    if raw is None or not raw.strip():
        return {}
    try:
        value: Any = loads(raw)
    except json.JSONDecodeError as exc:
        repaired = near_json(raw)
        if repaired is not None:
            return repaired
        start = max(exc.pos - 30, 0)
        near = raw[start : exc.pos + 30]
        raise ArgumentProblems(
            [
                f"the arguments are not valid JSON: {exc.msg.removesuffix(' at')} at line "
                f"{exc.lineno}, column {exc.colno} (position {exc.pos}), near {near!r}"
            ]
        ) from None
    except RecursionError:
        raise ArgumentProblems(["the arguments are nested too deeply to be read"]) from None
    if isinstance(value, str) and value.strip().startswith("{"):  # JSON encoded twice
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            value = json.loads(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), "a number")  # pyright: ignore[reportUnknownArgumentType]
        raise ArgumentProblems(
            [f"the arguments must be a JSON object of named parameters, got {kind}: {short(value)}"]
        )
    return cast(dict[str, Any], value)


def has_null(value: Any) -> bool:
    """Whether a ``null`` is anywhere in `value` (most arguments have none: nothing to fill).
    Iterative: arguments may nest deeper than the interpreter's recursion limit."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if item is None:
            return True
        if type(item) is dict:
            stack.extend(cast(dict[str, Any], item).values())
        elif type(item) is list:
            stack.extend(cast(list[Any], item))
    return False


def fill_null_defaults(value: Any, schema: Any, root: Mapping[str, Any]) -> Any:
    """`value` with each ``null`` removed where an optional property does not admit null.

    Strict schemas make optional properties required and nullable; a model then sends ``null``
    to mean "the default". Removing the key lets the validator (or the function) apply it.
    """
    node = _resolve(schema, root)
    if node is None:
        return value
    if isinstance(value, dict):
        obj = _pick_object(node, cast(dict[str, Any], value), root)
        data = cast(dict[str, Any], value)
        return _fill_object(data, obj, root) if obj else data
    if isinstance(value, list):
        items = cast(list[Any], value)
        prefix = cast(list[Any], node.get("prefixItems") or [])
        each = node.get("items")
        out: list[Any] = []
        for i, item in enumerate(items):
            sub = prefix[i] if i < len(prefix) else each
            out.append(fill_null_defaults(item, sub, root) if sub is not None else item)
        return out
    return value


def _fill_object(
    value: dict[str, Any], node: Mapping[str, Any], root: Mapping[str, Any]
) -> dict[str, Any]:
    props = cast(Mapping[str, Any], node.get("properties") or {})
    required = set(cast(list[str], node.get("required") or []))
    extra = node.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, item in value.items():
        prop = props.get(key, extra if isinstance(extra, Mapping) else None)
        if item is None and key in props and _null_means_default(key, props, required, root):
            continue
        out[key] = fill_null_defaults(item, prop, root) if prop is not None else item
    return out


def _null_means_default(
    key: str, props: Mapping[str, Any], required: set[str], root: Mapping[str, Any]
) -> bool:
    """A ``null`` for an optional property whose type does not take null: drop the key."""
    return key not in required and not admits_null(props[key], root)


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any] | None:
    node = as_schema(schema)
    for _ in range(32):
        if node is None:
            return None
        if "$ref" in node:
            target = resolve_ref(root, str(node["$ref"]))
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}} if target else None
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            first = as_schema(node["allOf"][0]) or {}
            node = {**first, **{k: v for k, v in node.items() if k != "allOf"}}
        else:
            return node
    return None


def _pick_object(
    node: Mapping[str, Any], value: Mapping[str, Any], root: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The object schema `value` is meant for: the node itself, or the one union branch."""
    if "properties" in node:
        return node
    branches: list[Any] = [*node.get("anyOf", []), *node.get("oneOf", [])]
    candidates = [b for b in (_resolve(sub, root) for sub in branches) if b and "properties" in b]
    fitting = [b for b in candidates if _fits(b, value)]
    return fitting[0] if len(fitting) == 1 else None


def _fits(node: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    props = cast(Mapping[str, Any], node["properties"])
    if node.get("additionalProperties") is False and set(value) - set(props):
        return False
    for name, prop in props.items():
        sub = as_schema(prop) or {}
        if name in value and "const" in sub and value[name] != sub["const"]:
            return False
        enum = sub.get("enum")
        if name in value and isinstance(enum, list) and value[name] not in enum:
            return False
    return True


class PydanticArguments:
    """Validates arguments with the model built from a function's signature."""

    __slots__ = ("fields", "model", "schema")

    def __init__(self, model: type[BaseModel], fields: dict[str, str], schema: dict[str, Any]):
        self.model = model
        self.fields = fields
        self.schema = schema

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if has_null(data):
            data = fill_null_defaults(data, self.schema, self.schema)
        try:
            instance = self.model.model_validate(data)
        except Exception as exc:
            from pydantic import ValidationError  # loaded already: the model is pydantic's

            if not isinstance(exc, ValidationError):
                raise
            lines = [_pydantic_line(e, data) for e in exc.errors()]
            raise ArgumentProblems(list(dict.fromkeys(lines))) from None
        return {param: getattr(instance, field) for field, param in self.fields.items()}


def _pydantic_line(error: Any, data: Any) -> str:
    path = ".".join(_data_path(tuple(error["loc"]), data)) or "(arguments)"
    if error["type"] == "missing":
        return f"{path}: {error['msg']}"
    return f"{path}: {error['msg']} (got {short(error['input'])})"


def _data_path(loc: tuple[Any, ...], data: Any) -> list[str]:
    """The location as a path into the data: union member tags (``pet.dog.barks``) left out."""
    path: list[str] = []
    node: Any = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = cast(dict[Any, Any], node)[part]
        elif isinstance(node, list | tuple) and isinstance(part, int):
            items = cast(list[Any], node)
            node = items[part] if -len(items) <= part < len(items) else None
        elif not (last and isinstance(node, dict)):  # a missing key is kept
            continue  # a union member's tag, not a key of the data
        path.append(str(part))
    return path


class JsonSchemaArguments:
    """Validates arguments against a raw JSON schema with `jsonschema` (built once)."""

    __slots__ = ("schema", "validator")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        from jsonschema.validators import validator_for

        self.schema = dict(schema)
        cls = validator_for(self.schema)
        cls.check_schema(self.schema)
        self.validator: Validator = cls(self.schema, format_checker=cls.FORMAT_CHECKER)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if has_null(data):
            data = fill_null_defaults(data, self.schema, self.schema)
        errors = sorted(self.validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
        if not errors:
            return data
        coerced = _lax(data, errors)
        if coerced is not None:  # what is left wrong is what the model hears of
            data = coerced
            errors = sorted(self.validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
            if not errors:
                return data
        lines: list[str] = []
        for error in errors:
            for line in _jsonschema_lines(error):
                if line not in lines:
                    lines.append(line)
        raise ArgumentProblems(lines)


def _lax(data: dict[str, Any], errors: Iterable[ValidationError]) -> dict[str, Any] | None:
    """`data` with each value of the wrong type that has one lax reading read so (as Pydantic's
    lax mode would), or None when no value could be."""
    fixed = copy.deepcopy(data)
    changed = False
    for error in errors:
        path = list(error.absolute_path)
        if error.validator != "type" or not path:
            continue
        ok, value = lax_value(error.instance, cast("str | list[str]", error.validator_value))
        if ok:
            parent: Any = fixed
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = value
            changed = True
    return fixed if changed else None


def _jsonschema_lines(error: ValidationError) -> list[str]:
    path = [str(part) for part in error.absolute_path]
    where = ".".join(path) or "(arguments)"
    instance: Any = error.instance
    kind, expected = error.validator, error.validator_value
    if kind == "required" and isinstance(instance, dict):
        names = [n for n in cast(list[str], expected) if n not in instance]
        return [f"{'.'.join([*path, n])}: Field required" for n in names]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known: Mapping[str, Any] = cast(Mapping[str, Any], error.schema).get("properties") or {}
        extra = [k for k in cast(dict[str, Any], instance) if k not in known]
        if extra and not cast(Mapping[str, Any], error.schema).get("patternProperties"):
            items = cast(dict[str, Any], instance)
            return [
                f"{'.'.join([*path, k])}: Extra inputs are not permitted (got {short(items[k])})"
                for k in extra
            ]
    if kind == "type":
        names = cast(list[str], expected) if isinstance(expected, list) else [str(expected)]
        return [f"{where}: Input should be of type {' or '.join(names)} (got {short(instance)})"]
    if kind == "enum":
        options = ", ".join(short(v) for v in cast(list[Any], expected))
        return [f"{where}: Input should be one of {options} (got {short(instance)})"]
    if kind == "const":
        return [f"{where}: Input should be {short(expected)} (got {short(instance)})"]
    return [f"{where}: {_clip(error.message, 200)}"]
