"""The strict transform on raw JSON schemas: rules, lossy cases, an independent checker."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentloop._schema import to_strict

ALLOWED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "anyOf",
    "$ref",
    "$defs",
    "definitions",
    "description",
}


TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def strict_subset_violations(schema: dict[str, Any]) -> list[str]:
    """Every way `schema` leaves the strict subset, as readable strings (empty: inside it)."""
    found: list[str] = []
    if schema.get("type") != "object":
        found.append("root: type is not object")
    if "anyOf" in schema:
        found.append("root: anyOf at the root")

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            found.append(f"{where}: not a schema object")
            return
        for key in node:
            if key not in ALLOWED:
                found.append(f"{where}: keyword {key}")
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []
        for kind in kinds:
            if kind not in TYPES:
                found.append(f"{where}: type {kind}")
        if not ({"type", "enum", "anyOf", "$ref"} & set(node)):
            found.append(f"{where}: no type")
        if "$ref" in node:
            if len(node) != 1:
                found.append(f"{where}: $ref with siblings")
            if not resolves(schema, node["$ref"]):
                found.append(f"{where}: dangling $ref")
        if "object" in kinds or "properties" in node:
            if node.get("additionalProperties") is not False:
                found.append(f"{where}: additionalProperties is not false")
            props = node.get("properties", {})
            if sorted(node.get("required", [])) != sorted(props):
                found.append(f"{where}: not every property is required")
            for name, sub in props.items():
                walk(sub, f"{where}/properties/{name}")
        if "array" in kinds:
            if "items" not in node:
                found.append(f"{where}: array without items")
            else:
                walk(node["items"], f"{where}/items")
        for i, sub in enumerate(node.get("anyOf", [])):
            walk(sub, f"{where}/anyOf/{i}")
        for group in ("$defs", "definitions"):
            for name, sub in node.get(group, {}).items():
                walk(sub, f"{where}/{group}/{name}")

    walk(schema, "")
    return found


def resolves(root: dict[str, Any], ref: str) -> bool:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def assert_strict(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert strict_subset_violations(schema) == []


def test_checker_catches_violations() -> None:
    bad = {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 1}, "b": {"oneOf": [{}]}},
        "required": ["a"],
    }
    assert strict_subset_violations(bad) == [
        ": additionalProperties is not false",
        ": not every property is required",
        "/properties/a: keyword minLength",
        "/properties/b: keyword oneOf",
        "/properties/b: no type",
    ]


def test_objects_get_additional_properties_false_and_all_required() -> None:
    schema = {
        "type": "object",
        "title": "Args",
        "properties": {
            "city": {"type": "string", "title": "City"},
            "days": {"type": "integer", "default": 3},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.problems == []
    assert result.schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["city", "days", "note"],
        "additionalProperties": False,
    }
    assert result.defaults == {"/properties/days": 3, "/properties/note": None}
    assert_strict(result.schema)


def test_input_is_not_mutated() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "x"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"type": "integer", "minimum": 1}}}},
    }
    before = copy.deepcopy(schema)
    to_strict(schema)
    assert schema == before


def test_optional_description_moves_to_the_nullable_wrapper() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "description": "Count.", "maximum": 9}},
    }
    assert to_strict(schema).schema["properties"]["n"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "description": "Count.\nConstraints: maximum 9.",
    }


def test_optional_constant_stays_required_and_not_nullable() -> None:
    schema = {
        "type": "object",
        "properties": {"kind": {"const": "cat", "default": "cat", "type": "string"}},
    }
    props = to_strict(schema).schema["properties"]
    assert props == {"kind": {"type": "string", "enum": ["cat"]}}


def test_optional_ref_becomes_any_of_with_null() -> None:
    schema = {
        "type": "object",
        "properties": {"c": {"$ref": "#/$defs/Color", "default": "red"}},
        "$defs": {"Color": {"enum": ["red", "blue"], "type": "string", "title": "Color"}},
    }
    result = to_strict(schema)
    assert result.schema["properties"]["c"] == {
        "anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}]
    }
    assert result.schema["$defs"] == {"Color": {"type": "string", "enum": ["red", "blue"]}}
    assert_strict(result.schema)


def test_openapi_nullable_becomes_any_of() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "nullable": True}},
        "required": ["a"],
    }
    assert to_strict(schema).schema["properties"]["a"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }


def test_ref_with_siblings_is_inlined_and_unused_defs_pruned() -> None:
    schema = {
        "type": "object",
        "properties": {"addr": {"$ref": "#/$defs/Addr", "description": "Where."}},
        "required": ["addr"],
        "$defs": {
            "Addr": {
                "type": "object",
                "description": "An address.",
                "properties": {"s": {"type": "string"}},
                "required": ["s"],
            }
        },
    }
    result = to_strict(schema)
    assert result.schema == {
        "type": "object",
        "properties": {
            "addr": {
                "type": "object",
                "properties": {"s": {"type": "string"}},
                "required": ["s"],
                "additionalProperties": False,
                "description": "Where.",
            }
        },
        "required": ["addr"],
        "additionalProperties": False,
    }


def test_recursion_keeps_refs() -> None:
    schema = {
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/Node"}},
        "required": ["tree"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["value", "children"],
            }
        },
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.schema["properties"]["tree"] == {"$ref": "#/$defs/Node"}
    assert result.schema["$defs"]["Node"]["properties"]["children"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/Node"},
    }
    assert_strict(result.schema)


def test_root_ref_is_inlined() -> None:
    schema = {
        "$ref": "#/$defs/Out",
        "$defs": {
            "Out": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        },
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }


def test_all_of_of_one_is_merged_and_of_many_is_lossy() -> None:
    one = {
        "type": "object",
        "properties": {"a": {"allOf": [{"$ref": "#/$defs/E"}], "description": "Pick."}},
        "required": ["a"],
        "$defs": {"E": {"enum": ["x", "y"], "type": "string"}},
    }
    result = to_strict(one)
    assert result.lossless
    assert result.schema["properties"]["a"] == {
        "type": "string",
        "enum": ["x", "y"],
        "description": "Pick.",
    }
    many = {
        "type": "object",
        "properties": {"a": {"allOf": [{"type": "string"}, {"minLength": 1}]}},
        "required": ["a"],
    }
    result = to_strict(many)
    assert not result.lossless
    assert result.problems == [
        "/properties/a: allOf with 2 schemas",
        "/properties/a: accepts any value (no type)",
    ]


def test_discriminated_one_of_becomes_any_of() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pet": {
                "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
                "discriminator": {"propertyName": "kind"},
            }
        },
        "required": ["pet"],
        "$defs": {
            "Cat": {
                "type": "object",
                "properties": {"kind": {"const": "cat"}, "meows": {"type": "integer"}},
                "required": ["kind", "meows"],
            },
            "Dog": {
                "type": "object",
                "properties": {"kind": {"const": "dog"}, "barks": {"type": "boolean"}},
                "required": ["kind", "barks"],
            },
        },
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.schema["properties"]["pet"] == {
        "anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    }
    assert result.schema["$defs"]["Cat"]["properties"]["kind"] == {"enum": ["cat"]}
    assert_strict(result.schema)


def test_one_of_with_disjoint_types_is_safe_but_overlap_is_lossy() -> None:
    safe = {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "string"}, {"type": "boolean"}]}},
        "required": ["v"],
    }
    assert to_strict(safe).lossless
    overlap = {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "integer"}, {"type": "number"}]}},
        "required": ["v"],
    }
    result = to_strict(overlap)
    assert result.problems == [
        "/properties/v: oneOf whose branches may overlap cannot become anyOf"
    ]
    untagged = {
        "type": "object",
        "properties": {
            "v": {
                "oneOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]},
                ]
            }
        },
        "required": ["v"],
    }
    assert not to_strict(untagged).lossless


def test_const_becomes_enum() -> None:
    schema = {"type": "object", "properties": {"k": {"const": 3}}, "required": ["k"]}
    assert to_strict(schema).schema["properties"]["k"] == {"enum": [3]}


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": "integer", "minimum": 1, "maximum": 10}, "Constraints: minimum 1, maximum 10."),
        (
            {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
            "Constraints: exclusive minimum 0, multiple of 0.5.",
        ),
        (
            {"type": "string", "minLength": 2, "maxLength": 5},
            "Constraints: minimum length 2, maximum length 5.",
        ),
        ({"type": "string", "minLength": 3, "maxLength": 3}, "Constraints: exactly 3 characters."),
        ({"type": "string", "pattern": "^[A-Z]{3}$"}, "Constraints: pattern ^[A-Z]{3}$."),
        ({"type": "string", "format": "date-time"}, "Constraints: format date-time."),
        (
            {"type": "array", "items": {"type": "integer"}, "minItems": 1, "uniqueItems": True},
            "Constraints: minimum items 1, unique items.",
        ),
    ],
)
def test_constraints_move_into_the_description(prop: dict[str, Any], expected: str) -> None:
    schema = {"type": "object", "properties": {"p": prop}, "required": ["p"]}
    result = to_strict(schema)
    assert result.lossless
    assert result.schema["properties"]["p"]["description"] == expected
    assert_strict(result.schema)


def test_constraint_text_follows_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {"p": {"type": "integer", "description": "Days.", "maximum": 7}},
        "required": ["p"],
    }
    assert (
        to_strict(schema).schema["properties"]["p"]["description"]
        == "Days.\nConstraints: maximum 7."
    )


def test_title_default_examples_and_unknown_keywords_are_dropped_silently() -> None:
    schema = {
        "type": "object",
        "title": "T",
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {
            "p": {"type": "string", "title": "P", "examples": ["a"], "x-vendor": 1, "default": "a"}
        },
        "required": ["p"],
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.schema["properties"]["p"] == {"type": "string"}
    assert "title" not in result.schema
    assert "$schema" not in result.schema


def test_fixed_tuple_becomes_items_with_positions_in_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {
            "t": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            }
        },
        "required": ["t"],
    }
    result = to_strict(schema)
    assert result.lossless
    assert result.schema["properties"]["t"] == {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "description": "Constraints: items in order: integer, string, exactly 2 items.",
    }


def test_draft7_tuple_items_list() -> None:
    schema = {
        "type": "object",
        "properties": {"t": {"type": "array", "items": [{"type": "integer"}, {"type": "integer"}]}},
        "required": ["t"],
    }
    result = to_strict(schema)
    assert result.schema["properties"]["t"]["items"] == {"type": "integer"}


@pytest.mark.parametrize(
    ("prop", "problem"),
    [
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            "/properties/p: free-form object (additionalProperties) is not supported",
        ),
        (
            {"type": "object", "additionalProperties": True},
            "/properties/p: free-form object (additionalProperties) is not supported",
        ),
        (
            {"type": "object"},
            "/properties/p: object without properties (free-form) is not supported",
        ),
        ({}, "/properties/p: accepts any value (no type)"),
        ({"type": "array", "items": {}}, "/properties/p: array items accept any value"),
        (
            {"type": "string", "not": {"enum": ["x"]}},
            "/properties/p: keyword 'not' is not supported in strict mode",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "patternProperties": {"^x": {"type": "string"}},
            },
            "/properties/p: keyword 'patternProperties' is not supported in strict mode",
        ),
        (
            {"type": "string", "if": {"minLength": 1}, "then": {"pattern": "a"}},
            "/properties/p: keyword 'if' is not supported in strict mode",
        ),
    ],
)
def test_lossy_schemas_say_where_and_why(prop: dict[str, Any], problem: str) -> None:
    result = to_strict({"type": "object", "properties": {"p": prop}, "required": ["p"]})
    assert not result.lossless
    assert result.problems[0] == problem


def test_boolean_subschema_is_lossy() -> None:
    result = to_strict({"type": "object", "properties": {"p": True}, "required": ["p"]})
    assert result.problems == ["/properties/p: boolean schema true"]


def test_root_must_be_an_object() -> None:
    assert to_strict({"type": "array", "items": {"type": "integer"}}).problems == [
        "/: the root must be an object (not a union or another type)"
    ]
    union = {"anyOf": [{"type": "object", "properties": {}}, {"type": "null"}]}
    assert not to_strict(union).lossless


def test_root_object_without_properties_is_a_tool_without_parameters() -> None:
    result = to_strict({"type": "object"})
    assert result.lossless
    assert result.schema == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_described_self_reference_does_not_inline_forever() -> None:
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node", "description": "The root."}},
        "required": ["root"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "next": {"$ref": "#/$defs/Node", "description": "The next node.", "title": "N"},
                },
                "required": ["value", "next"],
            }
        },
    }
    result = to_strict(schema)
    assert result.lossless
    root = result.schema["properties"]["root"]
    assert root["description"] == "The root."
    assert root["properties"]["next"] == {
        "anyOf": [{"$ref": "#/$defs/Node"}],
        "description": "The next node.",
    }
    wrapped = {"anyOf": [{"$ref": "#/$defs/Node"}], "description": "The next node."}
    assert result.schema["$defs"]["Node"]["properties"]["next"] == {
        "type": "object",
        "properties": {"value": {"type": "integer"}, "next": wrapped},
        "required": ["value", "next"],
        "additionalProperties": False,
        "description": "The next node.",
    }
    assert_strict(result.schema)
