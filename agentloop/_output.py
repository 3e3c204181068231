"""Structured output: from an `output_type` to what the request asks for and how the answer is read.

An `OutputSpec` is built once per agent. It knows the JSON schema of the output, whether the
schema had to be wrapped in an object (the API wants an object at the root), how to ask for it
(native ``response_format``, a final-result tool, or a prompt), and how to validate an answer.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ._errors import ToolRetry, UsageError
from ._json import loads
from ._messages import ResponseFormat, ToolDefinition
from ._schema import to_strict
from ._wire.profiles import ModelProfile, OutputMode
from ._wire.prompted import schema_prompt

__all__ = ["OUTPUT_TOOL_NAME", "OutputInvalid", "OutputSpec"]

OUTPUT_TOOL_NAME = "final_result"
_WRAP_KEY = "result"
_FENCE_RE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.S)


class OutputInvalid(ToolRetry):
    """The answer is not valid output; the message says why, for the model and for the error."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """How one agent asks for and validates its output.

    `schema` is None for text output. `wrapped` means the schema was wrapped in
    ``{"result": ...}`` because its root is not an object.
    """

    output_type: Any
    schema: Mapping[str, Any] | None
    wrapped: bool
    name: str
    description: str | None
    validate_python: Any  # Callable[[Any], Any]: raises OutputInvalid

    @classmethod
    def build(cls, output_type: Any) -> OutputSpec:
        if output_type is str:
            return cls(str, None, False, "text", None, _validate_text)
        if isinstance(output_type, Mapping):
            return _from_json_schema(cast(Mapping[str, Any], output_type))
        return _from_python_type(output_type)

    @property
    def is_text(self) -> bool:
        return self.schema is None

    def mode_for(self, profile: ModelProfile, requested: OutputMode | None) -> OutputMode:
        """The output mode for this spec on a server with `profile`."""
        if requested is not None:
            return requested
        if profile.output_mode == "native" and profile.response_format == "none":
            return "tool"
        return profile.output_mode

    def strict_schema(self, strict: bool | None) -> tuple[Mapping[str, Any], bool]:
        """The schema to send and whether to send it as strict."""
        assert self.schema is not None
        result = to_strict(dict(self.schema))
        if strict is False or (strict is None and not result.lossless):
            return self.schema, False
        if strict and not result.lossless:
            raise UsageError(
                f"output schema {self.name!r} cannot be made strict: {'; '.join(result.problems)}"
            )
        return result.schema, True

    def response_format(self, strict: bool | None) -> ResponseFormat:
        schema, is_strict = self.strict_schema(strict)
        return ResponseFormat(self.name, schema, is_strict, self.description)

    def tool_definition(self, strict: bool | None) -> ToolDefinition:
        schema, is_strict = self.strict_schema(strict)
        description = "Give the final answer by calling this tool with it."
        if self.description:
            description = f"{description} {self.description}"
        return ToolDefinition(OUTPUT_TOOL_NAME, description, schema, is_strict)

    def prompt(self) -> str:
        """Instructions for prompted-JSON mode (and the JSON-mode hint the API requires)."""
        assert self.schema is not None
        return schema_prompt(self.schema)

    def parse_text(self, text: str | None) -> Any:
        """Validate a text answer: the whole answer for text output, else JSON in the text."""
        if self.schema is None:
            return self.validate_python(text or "")
        if not text or not text.strip():
            raise OutputInvalid("The answer was empty; answer with JSON valid against the schema.")
        match = _FENCE_RE.match(text)
        return self.parse_json(match.group(1) if match else text)

    def parse_json(self, raw: str) -> Any:
        try:
            value: Any = loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as exc:  # nested too deep is not valid either
            raise OutputInvalid(
                f"The answer is not valid JSON ({exc}); answer with JSON valid against the schema."
            ) from None
        if self.wrapped:
            if not isinstance(value, dict) or _WRAP_KEY not in value:
                raise OutputInvalid(f'The answer must be an object with one key "{_WRAP_KEY}".')
            value = cast(dict[str, Any], value)[_WRAP_KEY]
        return self.validate_python(value)

    def with_name(self, name: str) -> OutputSpec:
        return dataclasses.replace(self, name=name)


def _validate_text(value: Any) -> Any:
    return value


def _wrap(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if schema.get("type") == "object" and "anyOf" not in schema and "oneOf" not in schema:
        return schema, False
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {_WRAP_KEY: schema},
        "required": [_WRAP_KEY],
        "additionalProperties": False,
    }
    if defs:
        wrapped["$defs"] = defs
    return wrapped, True


def _from_python_type(output_type: Any) -> OutputSpec:
    from pydantic import TypeAdapter, ValidationError

    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = adapter.json_schema()
    except Exception as exc:  # pydantic raises several types for unsupported types
        raise UsageError(f"output_type {output_type!r} is not supported: {exc}") from exc
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", getattr(output_type, "__name__", "output"))[:64]
    description = schema.pop("description", None)
    schema.pop("title", None)
    schema, wrapped = _wrap(schema)

    def validate(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise OutputInvalid(_format_pydantic_errors(exc)) from None

    return OutputSpec(output_type, schema, wrapped, name or "output", description, validate)


def _from_json_schema(schema: Mapping[str, Any]) -> OutputSpec:
    import jsonschema
    import jsonschema.validators

    raw = dict(schema)
    try:
        validator_cls: Any = jsonschema.validators.validator_for(raw)  # pyright: ignore[reportUnknownMemberType]
        validator_cls.check_schema(raw)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"output_type is not a valid JSON schema: {exc.message}") from exc
    validator = validator_cls(raw)
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(raw.pop("title", "output")))[:64] or "output"
    description = raw.pop("description", None)
    wrapped_schema, wrapped = _wrap(raw)

    def validate(value: Any) -> Any:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            parts = [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10]]
            raise OutputInvalid("Invalid output: " + "; ".join(parts))
        return value

    return OutputSpec(dict(schema), wrapped_schema, wrapped, name, description, validate)


def _format_pydantic_errors(exc: Any) -> str:
    parts: list[str] = []
    for error in exc.errors(include_url=False)[:10]:
        location = ".".join(str(p) for p in error["loc"]) or "(root)"
        if error["type"] == "missing":
            parts.append(f"{location}: {error['msg']}")
            continue
        got = json.dumps(error.get("input"), default=str)
        got = got if len(got) <= 80 else got[:77] + "..."
        parts.append(f"{location}: {error['msg']} (got {got})")
    return "Invalid output: " + "; ".join(parts)
