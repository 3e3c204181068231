"""Hypothesis strategies for the fuzz tests of the readers of what servers and models send.

Thousands of generated inputs (200 per property by default, ``AGENTLOOP_FUZZ_EXAMPLES`` for
more); the only exceptions allowed out are agentloop's typed errors
(`AgentloopError`, or the `ToolRetry` signal for arguments), never a bare KeyError, TypeError,
AttributeError, IndexError, RecursionError or UnicodeError.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from agentloop import AgentloopError

ALL_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]


# AGENTLOOP_FUZZ_EXAMPLES=5000 for a deep run; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("AGENTLOOP_FUZZ_EXAMPLES", "200"))


MANY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=ALL_CHECKS)


SOME = settings(
    max_examples=max(EXAMPLES // 3, 50), deadline=None, suppress_health_check=ALL_CHECKS
)


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)


json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=5,
)


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of `fields`, each of its own kind or of any JSON type (so the
    parsers go deep and also meet every type confusion), plus the odd unknown key."""
    return st.fixed_dictionaries(
        {}, optional={key: value | json_leaf for key, value in fields.items()}
    ) | st.dictionaries(st.text(max_size=6), json_value, max_size=2)


text = st.text(max_size=12)


small = st.integers(-2, 3)


finish = st.sampled_from(["stop", "length", "tool_calls", "error", "", "eos", "function_call"])


function = shaped({"name": text, "arguments": text | json_value, "input": text})


tool_delta = shaped(
    {"index": small, "id": text, "type": st.just("function"), "function": function,
     "custom": function}
)  # fmt: skip


part = shaped(
    {"type": st.sampled_from(["text", "thinking"]), "text": text, "thinking": text | st.lists(text)}
)


delta = shaped(
    {"role": st.just("assistant"), "content": text | st.lists(part, max_size=2),
     "refusal": text, "reasoning": text, "reasoning_content": text,
     "reasoning_details": st.lists(shaped({"type": text, "index": small, "text": text}),
                                   max_size=2),
     "tool_calls": st.lists(tool_delta, max_size=3), "function_call": function}
)  # fmt: skip


choice = shaped({"index": small, "delta": delta, "message": delta, "finish_reason": finish})


usage = shaped(
    {key: st.integers(-5, 10**6) | st.floats()
     for key in ("prompt_tokens", "completion_tokens", "cost", "cached_tokens")}
    | {"prompt_tokens_details": shaped({"cached_tokens": st.integers(-1, 10)})}
)  # fmt: skip


error_body = shaped(
    {"message": text, "code": st.integers(100, 700) | text, "type": text,
     "status_code": st.integers(100, 700),
     "metadata": shaped({"raw": text | json_value.map(json.dumps), "reasons": st.lists(text),
                         "flagged_input": text})}
)  # fmt: skip


chunk = shaped(
    {"id": text, "model": text, "choices": st.lists(choice, max_size=2), "usage": usage,
     "error": error_body, "x_groq": shaped({"usage": usage})}
)  # fmt: skip


def typed(exc: BaseException) -> bool:
    return isinstance(exc, AgentloopError)


def outcome(function: Any, *args: Any) -> tuple[Any, Exception | None]:
    """(value, None) or (None, the exception): assertions stay outside the ``except``."""
    try:
        return function(*args), None
    except Exception as exc:
        return None, exc


completion = chunk  # the same keys: id, model, choices (with message), usage, error


headers = st.dictionaries(
    st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "x-should-retry",
                     "x-request-id"]) | st.text(max_size=5),
    st.text(max_size=30) | st.sampled_from(["1e308", "-1e308", "nan", "inf", "-0", "1e-320",
                                            "Fri, 01 Jan 2100 00:00:00 GMT", "true", "false"]),
    max_size=4,
)  # fmt: skip
