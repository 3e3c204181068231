"""Extract `CreateChatCompletionRequest` from OpenAI's OpenAPI spec into a standalone JSON Schema.

Usage::

    python tools/extract_openapi_schema.py SPEC.yaml tests/fixtures/openapi_chat_request.json

The schema and everything it references are bundled under ``$defs`` (each
``#/components/schemas/X`` becomes ``#/$defs/X``), OpenAPI's ``nullable: true`` becomes a JSON
Schema union with ``null``, and keywords that only document (descriptions, titles, examples,
``x-`` extensions, ``discriminator``) are dropped to keep the fixture small. The result is a
draft 2020-12 schema that `jsonschema` validates with no network and no YAML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = "CreateChatCompletionRequest"
PREFIX = "#/components/schemas/"
DROPPED = {
    "description",
    "title",
    "example",
    "examples",
    "discriminator",
    "externalDocs",
    "deprecated",
    "default",
}


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's ``nullable: true`` as a JSON Schema union with null."""
    kind = node.get("type")
    if isinstance(kind, str) and "enum" not in node:
        return {**node, "type": [kind, "null"]}
    if isinstance(kind, list) and "enum" not in node:
        return {**node, "type": [*kind, "null"]}
    return {"anyOf": [node, {"type": "null"}]}


def _convert(node: Any, refs: set[str]) -> Any:
    if isinstance(node, list):
        return [_convert(item, refs) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        if key in DROPPED or key.startswith("x-"):
            continue
        if key == "nullable":
            nullable = bool(value)
        elif key == "$ref":
            name = value.removeprefix(PREFIX)
            if name == value:
                raise SystemExit(f"unexpected $ref {value!r}")
            refs.add(name)
            out[key] = f"#/$defs/{name}"
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {name: _convert(sub, refs) for name, sub in value.items()}
        else:
            out[key] = _convert(value, refs)
    return _nullable(out) if nullable else out


def extract(spec: dict[str, Any], root: str = ROOT) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    defs: dict[str, Any] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        refs: set[str] = set()
        defs[name] = _convert(schemas[name], refs)
        todo.extend(sorted(refs - defs.keys()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/$defs/{root}",
        "$defs": dict(sorted(defs.items())),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    spec = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
    bundle = extract(spec)
    text = json.dumps(bundle, indent=1, sort_keys=False, ensure_ascii=False) + "\n"
    Path(argv[2]).write_text(text, encoding="utf-8")
    print(f"{argv[2]}: {len(bundle['$defs'])} definitions, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
