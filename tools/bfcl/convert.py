"""BFCL's functions as OpenAI chat-completions tools, by the rules of BFCL's own OpenAI
function-calling handler (bfcl-eval 2026.3.23: ``convert_to_tool`` with ``GORILLA_TO_OPENAPI``
for the ``OPENAI_COMPLETIONS`` style, after ``load_dataset_entry``'s Python hint), so that every
client is offered what BFCL offers an OpenAI model:

- each function's description gets BFCL's hint `PYTHON_HINT` (its generation step adds it; its
  checker reads the functions without it);
- a name's dots become underscores (``math.factorial`` -> ``math_factorial``): OpenAI's names
  allow none. BFCL never maps a called name back: its checker compares the called names with the
  expected ones converted the same way (``underscore_to_dot`` in its model config), so the calls
  are scored under the names the model used (see `score`);
- ``parameters.type`` becomes ``"object"`` (BFCL writes ``"dict"``);
- each property's type goes through `TYPE_MAP` (a type it does not know, or none, becomes
  ``"string"``); a ``float`` property also gets ``"format": "float"`` and the sentence
  `FLOAT_NOTE` at the end of its description;
- inside an array or an object, BFCL converts nested ``properties`` the same way, and an
  ``items`` type (and the ``items`` type of an array of arrays) through `TYPE_MAP` alone;
- every other key (``default``, ``enum``, ``required``, ``optional``...) is passed on untouched.

`run.py` checks `TYPE_MAP` against the installed bfcl-eval's own map before a run.
"""

from __future__ import annotations

import copy
from typing import Any

PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
FLOAT_NOTE = " This is a float type value."

# BFCL's type names (Python, Java and JavaScript flavours) -> JSON Schema types.
TYPE_MAP: dict[str, str] = {
    **dict.fromkeys(["integer", "byte", "short", "long", "Bigint"], "integer"),
    **dict.fromkeys(["number", "float", "double"], "number"),
    **dict.fromkeys(["string", "char", "String", "any", "Any"], "string"),
    **dict.fromkeys(["boolean", "bool"], "boolean"),
    **dict.fromkeys(["array", "list", "tuple", "ArrayList", "Array", "Queue", "Stack"], "array"),
    **dict.fromkeys(["dict", "object", "HashMap", "Hashtable"], "object"),
}


def openai_name(name: str) -> str:
    """The tool name BFCL gives an OpenAI model: dots become underscores."""
    return name.replace(".", "_")


def _convert_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """BFCL's property conversion, in place (the caller passes a copy)."""
    for spec in properties.values():
        bfcl_type = spec.get("type")
        if bfcl_type == "float":
            spec["format"] = "float"
            spec["description"] = spec.get("description", "") + FLOAT_NOTE
        spec["type"] = TYPE_MAP.get(bfcl_type, "string") if bfcl_type is not None else "string"
        if spec["type"] not in ("array", "object"):
            continue
        if "properties" in spec:
            _convert_properties(spec["properties"])
        elif "items" in spec:
            items = spec["items"]
            items["type"] = TYPE_MAP[items["type"]]
            if items["type"] == "array" and "items" in items:
                items["items"]["type"] = TYPE_MAP[items["items"]["type"]]
            elif items["type"] == "object" and "properties" in items:
                _convert_properties(items["properties"])
    return properties


def to_openai_function(function: dict[str, Any]) -> dict[str, Any]:
    """One BFCL function as an OpenAI ``function`` object (name, description, parameters)."""
    converted = copy.deepcopy(function)
    converted["name"] = openai_name(converted["name"])
    converted["description"] = converted.get("description", "") + PYTHON_HINT
    parameters = converted["parameters"]
    parameters["type"] = "object"
    parameters["properties"] = _convert_properties(parameters["properties"])
    return converted


def to_openai_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL's functions as the ``tools`` of a chat-completions request."""
    return [{"type": "function", "function": to_openai_function(f)} for f in functions]
