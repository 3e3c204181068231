"""A chat-completions server on 127.0.0.1 with the quirks of real OpenAI-compatible servers.

`QuirkServer` is a `LocalServer` (real sockets, background threads, every request recorded)
whose answers are computed, not scripted. Without quirks it answers as a cooperative model:

- a native tool call (to the first tool other than ``final_result``) when the request offers
  tools and its last message is the user's; a ``final_result`` call after tool results when that
  tool is offered;
- in prompted tool mode (the tools described in the system message, as agentloop writes them),
  the same call written as JSON in the reply text, in the form `call_form` says;
- a JSON value valid against the schema of a ``json_schema`` / ``json_object`` (+ ``schema``)
  response format, or against the schema stated in the system prompt (JSON mode without one);
- plain text otherwise; a stream (SSE) when the body asks for one;
- usage whose prompt count grows with what the prompt holds (messages and tools), so that
  agentloop's silent-drop checks can read it; a cap of a few tokens gives a short answer
  finished by ``length``.

Each quirk (the `Quirk` names below) makes it answer as one real server does, with the error
bodies and messages that server sends (from the servers' sources, collected in the research
notes "quirks.md" sections 1-6; llama-cpp-python's two 500s as measured on 0.3.36), or drops
something silently as some chat templates do.

    with QuirkServer({NULL_CONTENT_500}) as server:
        result = await Agent(OpenAICompatible("m", base_url=server.base_url), tools=[add]).run("?")
        assert len(server.bodies) == 4
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Self

from support.local_server import LocalServer, Recorded, Reply, sse

__all__ = [
    "ALL_QUIRKS",
    "CONSTANT_USAGE",
    "DROP_TOOLS",
    "DROP_TOOL_RESULTS",
    "JSON_OBJECT_400",
    "JSON_SCHEMA_400",
    "JSON_SCHEMA_500",
    "MAX_TOKENS_400",
    "NO_AUTO_TOOL_CHOICE",
    "NO_JINJA_TOOLS",
    "NO_STREAM_USAGE",
    "NO_TOOL_PARSER",
    "NULL_CONTENT_400",
    "NULL_CONTENT_500",
    "OLLAMA_NO_TOOLS",
    "REQUIRED_500_EMPTY",
    "STREAM_OPTIONS_400",
    "STREAM_OPTIONS_VLLM",
    "STREAM_TOOLS_CUT",
    "STREAM_TOOLS_EMPTY",
    "STREAM_TOOLS_NOTHING",
    "QuirkServer",
    "instance",
    "is_check",
]

Quirk = str
NULL_CONTENT_500: Quirk = "null_content_500"
"""llama-cpp-python 0.3.x: 500 (pydantic validation) to an assistant turn with content null."""
NULL_CONTENT_400: Quirk = "null_content_400"
"""LM Studio: 400 to an assistant turn with content null (``{"error": "<string>"}`` body)."""
JSON_SCHEMA_500: Quirk = "json_schema_500"
"""llama-cpp-python 0.3.x: 500 (pydantic literal error) to ``response_format`` json_schema."""
JSON_SCHEMA_400: Quirk = "json_schema_400"
"""llama.cpp's server (older builds): 400 to a response_format type other than text/json_object."""
JSON_OBJECT_400: Quirk = "json_object_400"
"""LM Studio: 400 to ``response_format`` json_object."""
REQUIRED_500_EMPTY: Quirk = "required_500_empty"
"""llama-cpp-python with chatml-function-calling: an assert fails on ``tool_choice: "required"``:
500 with an empty message."""
OLLAMA_NO_TOOLS: Quirk = "ollama_no_tools"
"""Ollama, a model without tool capability: 400 ``... does not support tools``."""
NO_AUTO_TOOL_CHOICE: Quirk = "no_auto_tool_choice"
"""vLLM (0.8.3 to 0.12) started without --enable-auto-tool-choice: 400 to tools with tool_choice
auto (or none sent); ``"required"`` and named choices still work (guided decoding)."""
NO_TOOL_PARSER: Quirk = "no_tool_parser"
"""vLLM 0.13 and later without --tool-call-parser: ``"required"`` is refused too (add it to
`NO_AUTO_TOOL_CHOICE`)."""
NO_JINJA_TOOLS: Quirk = "no_jinja_tools"
"""llama.cpp's server without --jinja: 500 ``tools param requires --jinja flag``."""
STREAM_OPTIONS_400: Quirk = "stream_options_400"
"""400 to any ``stream_options``, as an OpenAI-style gateway whose upstream lacks it answers
(``Unknown parameter: 'stream_options'.``, QuantumNous/new-api issue #418)."""
STREAM_OPTIONS_VLLM: Quirk = "stream_options_vllm"
"""400 to any ``stream_options`` with vLLM's message (vLLM itself says it for non-stream bodies)."""
MAX_TOKENS_400: Quirk = "max_tokens_400"
"""OpenAI's reasoning models: 400 ``Unsupported parameter: 'max_tokens'``."""
DROP_TOOLS: Quirk = "drop_tools"
"""A chat template with no place for tools: they are never shown to the model (it never calls
one), and the prompt costs as many tokens with them as without (llama-server, such a model)."""
DROP_TOOL_RESULTS: Quirk = "drop_tool_results"
"""A chat template that drops ``role: "tool"`` messages (llama-cpp-python's
chatml-function-calling): they cost no prompt tokens."""
CONSTANT_USAGE: Quirk = "constant_usage"
"""Usage that does not follow the prompt (the same counts for every request)."""
STREAM_TOOLS_EMPTY: Quirk = "stream_tools_empty"
"""A stream of a request with tools says nothing (llama-cpp-python's function-calling handler):
a role chunk, a ``stop``, no text and no calls."""
STREAM_TOOLS_CUT: Quirk = "stream_tools_cut"
"""A stream of a request with tools says a word, then ends with no finish reason and no
``[DONE]``: a broken stream, not the empty-answer quirk."""
STREAM_TOOLS_NOTHING: Quirk = "stream_tools_nothing"
"""A stream of a request with tools ends with no event at all, not even ``[DONE]``
(llama-cpp-python 0.3.36's function-calling handler, given ``tool_choice: "auto"``)."""
NO_STREAM_USAGE: Quirk = "no_stream_usage"
"""``stream_options`` accepted but ignored: no usage chunk in a stream (llama-cpp-python)."""

ALL_QUIRKS = frozenset(
    {
        NULL_CONTENT_500,
        NULL_CONTENT_400,
        JSON_SCHEMA_500,
        JSON_SCHEMA_400,
        JSON_OBJECT_400,
        REQUIRED_500_EMPTY,
        OLLAMA_NO_TOOLS,
        NO_AUTO_TOOL_CHOICE,
        NO_JINJA_TOOLS,
        STREAM_OPTIONS_400,
        STREAM_OPTIONS_VLLM,
        MAX_TOKENS_400,
        NO_TOOL_PARSER,
        DROP_TOOLS,
        DROP_TOOL_RESULTS,
        CONSTANT_USAGE,
        NO_STREAM_USAGE,
        STREAM_TOOLS_EMPTY,
        STREAM_TOOLS_NOTHING,
        STREAM_TOOLS_CUT,
    }
)

# --- the servers' own error texts -------------------------------------------------------------

_LCP_NULL_CONTENT_ERRORS = (
    "{'type': 'literal_error', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestSystemMessage', 'role'), 'msg': \"Input should be 'system'\", "
    "'input': 'assistant', 'ctx': {'expected': \"'system'\"}}",
    "{'type': 'literal_error', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestUserMessage', 'role'), 'msg': \"Input should be 'user'\", "
    "'input': 'assistant', 'ctx': {'expected': \"'user'\"}}",
    "{'type': 'string_type', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestUserMessage', 'content', 'str'), 'msg': 'Input should be a valid "
    "string', 'input': None}",
    "{'type': 'list_type', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestUserMessage', 'content', 'list[union[...]]'), 'msg': 'Input should be "
    "a valid list', 'input': None}",
    "{'type': 'string_type', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestAssistantMessage', 'content'), 'msg': 'Input should be a valid "
    "string', 'input': None}",
    "{'type': 'literal_error', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestToolMessage', 'role'), 'msg': \"Input should be 'tool'\", "
    "'input': 'assistant', 'ctx': {'expected': \"'tool'\"}}",
    "{'type': 'literal_error', 'loc': ('body', 'messages', IDX, "
    "'ChatCompletionRequestFunctionMessage', 'role'), 'msg': \"Input should be 'function'\", "
    "'input': 'assistant', 'ctx': {'expected': \"'function'\"}}",
)
_LCP_JSON_SCHEMA_ERROR = (
    "{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input "
    "should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': {'expected': "
    "\"'text' or 'json_object'\"}}"
)
LM_STUDIO_NULL_CONTENT = (
    "Invalid 'content': 'content' field must be a string or an array of objects."
)
LM_STUDIO_JSON_OBJECT = "'response_format.type' must be 'json_schema'"
LLAMA_SERVER_JSON_SCHEMA = (
    'response_format type must be one of "text" or "json_object", but got: json_schema'
)
OLLAMA_NO_TOOLS_TEXT = "registry.ollama.ai/library/{model}:latest does not support tools"
VLLM_AUTO_TEXT = (
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)
VLLM_REQUIRED_TEXT = 'tool_choice="required" requires --tool-call-parser to be set'
VLLM_STREAM_OPTIONS_TEXT = "Stream options can only be defined when `stream=True`."
GATEWAY_STREAM_OPTIONS_TEXT = "Unknown parameter: 'stream_options'."
LLAMA_SERVER_NO_JINJA = "tools param requires --jinja flag"
OPENAI_MAX_TOKENS_TEXT = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
    "'max_completion_tokens' instead."
)


def llama_cpp_python_500(message: str) -> Reply:
    """llama-cpp-python's error body (`RouteErrorHandler`): always 500 for validation errors."""
    error = {"message": message, "type": "internal_server_error", "param": None, "code": None}
    return Reply(500, json_body={"error": error})


def vllm_400(message: str) -> Reply:
    """vLLM (0.10.1 and later)."""
    error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
    return Reply(400, json_body={"error": error})


def ollama_400(message: str) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return Reply(400, json_body={"error": error})


def lm_studio_400(message: str) -> Reply:
    """LM Studio: ``error`` is a bare string."""
    return Reply(400, json_body={"error": message})


def llama_server_error(status: int, message: str) -> Reply:
    kind = "invalid_request_error" if status == 400 else "server_error"
    return Reply(status, json_body={"error": {"code": status, "message": message, "type": kind}})


def openai_400(message: str, param: str | None = None, code: str | None = None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Reply(400, json_body={"error": error})


# --- helpers ----------------------------------------------------------------------------------


def is_check(body: Mapping[str, Any]) -> bool:
    """A silent-drop check: agentloop's one-token request."""
    return body.get("max_tokens") == 1 or body.get("max_completion_tokens") == 1


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
    return schema


def instance(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> Any:
    """A small value valid against `schema` (the subset of JSON schema agentloop sends)."""
    defs = {**(defs or {}), **schema.get("$defs", {})}
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return instance({**schema[key][0], "$defs": defs}, defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: Mapping[str, Any] = schema.get("properties", {})
        return {name: instance(sub, defs) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [instance(schema.get("items", {"type": "string"}), defs) for _ in range(count)]
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "integer":
        return int(schema.get("minimum", 2))
    if kind == "number":
        return float(schema.get("minimum", 2.5))
    if kind == "boolean":
        return True
    return None


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


_SCHEMA_PROMPT = "valid against this JSON schema:\n"
_TOOLS_PROMPT = "You can call tools."
_TOOL_LINE = re.compile(r"^- ([^\s:]+)")
_ARGS_LINE = "  arguments (JSON schema): "
CallForm = Literal["bare", "fenced", "tagged", "prose", "list"]


def prompted_tools(system: str) -> list[tuple[str, dict[str, Any]]]:
    """The tools (name, parameters) agentloop described in a system message."""
    found: list[tuple[str, dict[str, Any]]] = []
    name: str | None = None
    for line in system.splitlines():
        match = _TOOL_LINE.match(line)
        if match:
            name = match.group(1)
        elif line.startswith(_ARGS_LINE) and name is not None:
            found.append((name, json.loads(line.removeprefix(_ARGS_LINE))))
            name = None
    return found


def _prompt_schema(system: str) -> Any:
    at = system.find(_SCHEMA_PROMPT)
    if at < 0:
        return None
    value, _ = json.JSONDecoder().raw_decode(system[at + len(_SCHEMA_PROMPT) :])
    return value


class QuirkServer(LocalServer):
    """A chat-completions server with `quirks`; see the module doc.

    - `call_form`: how a prompted tool call is written when the reply is not held to a schema
      (``bare`` JSON, ``fenced`` in a code block, ``tagged`` ``<tool_call>``, ``prose`` before
      the JSON, a bare ``list`` of calls).
    - `answer`: the text of a plain answer.
    - `refuse`: when given, every chat request is answered with this reply (a server that
      refuses everything).
    - `chunk_chars`: the size of a streamed text delta (real servers stream a token at a time).
    """

    def __init__(
        self,
        quirks: Iterable[Quirk] = (),
        *,
        model: str = "m",
        call_form: CallForm = "bare",
        answer: str = "The total is 4.",
        refuse: Reply | None = None,
        chunk_chars: int = 7,
    ) -> None:
        super().__init__()
        self.quirks = frozenset(quirks)
        unknown = self.quirks - ALL_QUIRKS
        if unknown:
            raise ValueError(f"unknown quirks: {sorted(unknown)}")
        self.model = model
        self.call_form: CallForm = call_form
        self.answer = answer
        self.refuse = refuse
        self.chunk_chars = chunk_chars
        self.errors: list[int] = []  # the status of each error answered, in order
        self._calls = 0
        self._state = threading.Lock()
        self.handler = self._handle

    def __enter__(self) -> Self:
        super().__enter__()
        return self

    # --- what was sent ---

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON body of every chat request, in order of arrival."""
        return [r.json() for r in self.requests if r.path.endswith("/chat/completions")]

    def run_bodies(self) -> list[dict[str, Any]]:
        """The bodies that were not silent-drop checks."""
        return [b for b in self.bodies if not is_check(b)]

    # --- answering ---

    def _handle(self, request: Recorded) -> Reply:
        if not request.path.endswith("/chat/completions"):
            return Reply(404, json_body={"error": {"message": "not found"}})
        body: dict[str, Any] = request.json()
        reply = self.refuse or self.refusal(body)
        if reply is not None:
            with self._state:
                self.errors.append(reply.status)
            return reply
        message = self.reply_message(body)
        return self._stream(body, message) if body.get("stream") else self._whole(body, message)

    def refusal(self, body: Mapping[str, Any]) -> Reply | None:
        """The error answer this server's quirks give `body`, or None."""
        q = self.quirks
        messages: list[dict[str, Any]] = body.get("messages", [])
        tools = body.get("tools") or []
        fmt = body.get("response_format") or {}
        choice = body.get("tool_choice")
        if OLLAMA_NO_TOOLS in q and tools:
            return ollama_400(OLLAMA_NO_TOOLS_TEXT.format(model=self.model))
        if NO_AUTO_TOOL_CHOICE in q and tools and choice in (None, "auto"):
            return vllm_400(VLLM_AUTO_TEXT)
        if NO_JINJA_TOOLS in q and tools:
            return llama_server_error(500, LLAMA_SERVER_NO_JINJA)
        if NO_TOOL_PARSER in q and tools and choice == "required":
            return vllm_400(VLLM_REQUIRED_TEXT)
        if STREAM_OPTIONS_400 in q and "stream_options" in body:
            return openai_400(GATEWAY_STREAM_OPTIONS_TEXT, "stream_options", "unknown_parameter")
        if STREAM_OPTIONS_VLLM in q and "stream_options" in body:
            return vllm_400(VLLM_STREAM_OPTIONS_TEXT)
        if MAX_TOKENS_400 in q and "max_tokens" in body:
            return openai_400(OPENAI_MAX_TOKENS_TEXT, "max_tokens", "unsupported_parameter")
        null_at = [
            i
            for i, m in enumerate(messages)
            if m.get("role") == "assistant" and "content" in m and m["content"] is None
        ]
        if NULL_CONTENT_400 in q and null_at:
            return lm_studio_400(LM_STUDIO_NULL_CONTENT)
        if JSON_OBJECT_400 in q and fmt.get("type") == "json_object":
            return lm_studio_400(LM_STUDIO_JSON_OBJECT)
        if JSON_SCHEMA_400 in q and fmt.get("type") not in (None, "text", "json_object"):
            return llama_server_error(400, LLAMA_SERVER_JSON_SCHEMA)
        # llama-cpp-python: pydantic reports every validation error of the body in one message.
        errors: list[str] = []
        if NULL_CONTENT_500 in q:
            for index in null_at:
                errors += [e.replace("IDX", str(index)) for e in _LCP_NULL_CONTENT_ERRORS]
        if JSON_SCHEMA_500 in q and fmt.get("type") == "json_schema":
            errors.append(_LCP_JSON_SCHEMA_ERROR)
        if errors:
            count = f"{len(errors)} validation error" + ("s" if len(errors) > 1 else "")
            return llama_cpp_python_500(f"{count}:\n  " + "\n  ".join(errors))
        if REQUIRED_500_EMPTY in q and choice == "required":
            return llama_cpp_python_500("")  # `assert tool_choice == "auto"` in the handler
        return None

    def reply_message(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The assistant message a cooperative model gives `body`."""
        messages: list[dict[str, Any]] = body.get("messages", [])
        last = messages[-1] if messages else {}
        system = _text(messages[0]) if messages and messages[0].get("role") == "system" else ""
        tools = [] if DROP_TOOLS in self.quirks else list(body.get("tools") or [])
        after_results = last.get("role") == "tool" or (
            last.get("role") == "user" and _text(last).startswith("Result of ")
        )
        wants_call = last.get("role") == "user" and not after_results
        cap = body.get("max_tokens", body.get("max_completion_tokens"))
        if isinstance(cap, int) and cap <= 4:
            return {"role": "assistant", "content": "Hi"}
        fmt = body.get("response_format") or {}
        schema = self._format_schema(fmt, system)
        if tools:
            names = [t["function"]["name"] for t in tools]
            work = [t for t in tools if t["function"]["name"] != "final_result"]
            if wants_call and work:
                return self._native_call(work[0]["function"])
            if "final_result" in names and (after_results or not work):
                final = tools[names.index("final_result")]["function"]
                return self._native_call(final)
        if _TOOLS_PROMPT in system:
            offered = prompted_tools(system)
            work = [t for t in offered if t[0] != "final_result"]
            final = [t for t in offered if t[0] == "final_result"]
            pick = work[0] if wants_call and work else None
            if pick is None and final and (after_results or not work):
                pick = final[0]
            if pick is not None:
                name, parameters = pick
                call = {"name": name, "arguments": instance(parameters)}
                form = "bare" if schema is not None else self.call_form
                return {"role": "assistant", "content": _written(call, form)}
        if isinstance(schema, Mapping):
            return {"role": "assistant", "content": json.dumps(self._answer_value(schema))}
        return {"role": "assistant", "content": self.answer}

    def _answer_value(self, schema: Mapping[str, Any]) -> Any:
        branches = schema.get("anyOf")
        if isinstance(branches, list) and len(branches) == 2:
            first = branches[0]
            if "tool_calls" in first.get("properties", {}):  # agentloop's reply schema
                answer = branches[1]
                if answer.get("required") == ["answer"]:
                    return {"answer": self.answer}
                return instance({**answer, "$defs": schema.get("$defs", {})})
        return instance(schema)

    @staticmethod
    def _format_schema(fmt: Mapping[str, Any], system: str) -> Any:
        if fmt.get("type") == "json_schema":
            return fmt["json_schema"]["schema"]
        if fmt.get("type") == "json_object":
            return fmt.get("schema") or _prompt_schema(system) or {"type": "object"}
        return _prompt_schema(system)

    def _native_call(self, function: Mapping[str, Any]) -> dict[str, Any]:
        with self._state:
            self._calls += 1
            number = self._calls
        arguments = json.dumps(instance(function.get("parameters", {})))
        call = {
            "id": f"call_{number}",
            "type": "function",
            "function": {"name": function["name"], "arguments": arguments},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def usage(self, body: Mapping[str, Any], message: Mapping[str, Any]) -> dict[str, int]:
        """Prompt tokens from what the template renders (about 4 characters a token)."""
        if CONSTANT_USAGE in self.quirks:
            return {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        messages = [
            m
            for m in body.get("messages", [])
            if not (DROP_TOOL_RESULTS in self.quirks and m.get("role") == "tool")
        ]
        rendered = json.dumps(messages)
        if DROP_TOOLS not in self.quirks and body.get("tools"):
            rendered += json.dumps(body["tools"])
        prompt = len(rendered) // 4 + 1
        completion = len(json.dumps(message)) // 4 + 1
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _finish(self, body: Mapping[str, Any], message: Mapping[str, Any]) -> str:
        cap = body.get("max_tokens", body.get("max_completion_tokens"))
        if isinstance(cap, int) and cap <= 4:
            return "length"
        return "tool_calls" if message.get("tool_calls") else "stop"

    def _whole(self, body: Mapping[str, Any], message: dict[str, Any]) -> Reply:
        completion = {
            "id": "chatcmpl-q",
            "object": "chat.completion",
            "created": 1,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self._finish(body, message)}
            ],
            "usage": self.usage(body, message),
        }
        return Reply(200, json_body=completion)

    def _stream(self, body: Mapping[str, Any], message: dict[str, Any]) -> Reply:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-q",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if STREAM_TOOLS_NOTHING in self.quirks and body.get("tools"):
            return Reply.stream([])
        if STREAM_TOOLS_CUT in self.quirks and body.get("tools"):
            return Reply.stream(sse(chunk({"role": "assistant", "content": "Let"}), done=False))
        events: list[Any] = [chunk({"role": "assistant", "content": ""})]
        if STREAM_TOOLS_EMPTY in self.quirks and body.get("tools"):
            message = {"role": "assistant", "content": ""}
        text = message.get("content") or ""
        size = self.chunk_chars
        for start in range(0, len(text), size):
            events.append(chunk({"content": text[start : start + size]}))
        for index, call in enumerate(message.get("tool_calls") or []):
            arguments: str = call["function"]["arguments"]
            half = len(arguments) // 2
            head = {"name": call["function"]["name"], "arguments": arguments[:half]}
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {"index": index, "id": call["id"], "type": "function", "function": head}
                        ]
                    }
                )
            )
            events.append(
                chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}
                )
            )
        events.append(chunk({}, self._finish(body, message)))
        options = body.get("stream_options") or {}
        if options.get("include_usage") and NO_STREAM_USAGE not in self.quirks:
            usage = {**chunk({}), "choices": [], "usage": self.usage(body, message)}
            events.append(usage)
        return Reply.stream(sse(*events))


def _written(call: Mapping[str, Any], form: CallForm) -> str:
    """A prompted call as a small model writes it."""
    if form == "tagged":
        return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"
    if form == "list":
        return json.dumps([call])
    text = json.dumps({"tool_calls": [call]})
    if form == "fenced":
        return f"I will call the tool.\n```json\n{text}\n```"
    if form == "prose":
        return f"Let me use a tool. {text}"
    return text
