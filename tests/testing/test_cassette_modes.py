"""`cassette` modes, misuse and the file format, on a `FakeServer` (no sockets at all)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agentloop import Agent, UsageError
from agentloop._wire import transport
from agentloop.testing import CassetteError, FakeServer, cassette, reply
from agentloop.testing._cassette_format import decode_piece, diff, encode_piece, secrets_of


def _run(path: Path, script: list[object], mode: str = "once", prompt: str = "hi") -> str:
    with FakeServer(script) as server, cassette(path, mode) as tape:  # type: ignore[arg-type]
        output = Agent(server.model()).run_sync(prompt).output
    assert tape.recording == bool(script)
    return output


def test_once_records_when_missing_then_replays(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "once.json"
    assert _run(path, [reply("first")]) == "first"
    assert _run(path, []) == "first"  # the server would fail any request


def test_record_always_records_anew(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    _run(path, [reply("first")])
    assert _run(path, [reply("second")], "record") == "second"
    assert _run(path, [], "replay") == "second"


def test_replay_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="does not exist: record it first"):
        _run(tmp_path / "missing.json", [], "replay")


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"exchanges": []}')
    with pytest.raises(CassetteError, match="is not an agentloop cassette"):
        _run(path, [], "replay")
    path.write_text("{")
    with pytest.raises(CassetteError, match="cannot be read"):
        _run(path, [], "replay")


def test_a_failed_block_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "failed.json"

    def failing_test() -> None:
        with FakeServer([reply("a")]) as server, cassette(path):
            Agent(server.model()).run_sync("hi")
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    assert not path.exists()
    assert transport._tap is None  # pyright: ignore[reportPrivateUsage]


def test_requests_left_unused_fail_the_block(tmp_path: Path) -> None:
    path = tmp_path / "unused.json"
    with FakeServer([reply("a"), reply("b")]) as server, cassette(path):
        Agent(server.model()).run_sync("one")
        Agent(server.model()).run_sync("two")
    with pytest.raises(CassetteError, match=r"1 recorded exchange\(s\) were not used"):
        _run(path, [], prompt="one")
    with FakeServer([]) as server, cassette(path, allow_unused=True):
        assert Agent(server.model()).run_sync("two").output == "b"


def test_identical_requests_take_their_answers_in_order(tmp_path: Path) -> None:
    path = tmp_path / "same.json"
    with FakeServer([reply("a"), reply("b")]) as server, cassette(path):
        outputs = [Agent(server.model()).run_sync("same").output for _ in range(2)]
    with FakeServer([]) as server, cassette(path):
        assert [Agent(server.model()).run_sync("same").output for _ in range(2)] == outputs
    assert outputs == ["a", "b"]


def test_misuse_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'once', 'record' or 'replay'"):
        cassette(tmp_path / "x.json", "rewind")  # type: ignore[arg-type]
    with cassette(tmp_path / "a.json", allow_unused=True):
        with pytest.raises(UsageError, match="do not nest"):
            cassette(tmp_path / "b.json").__enter__()
        assert transport._tap is not None  # pyright: ignore[reportPrivateUsage]
    assert transport._tap is None  # pyright: ignore[reportPrivateUsage]


def test_the_file_is_readable_json(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    _run(path, [reply("first")])
    text = path.read_text()
    assert text.startswith('{\n  "agentloop_cassette": 1,\n  "exchanges": [\n')
    exchange = json.loads(text)["exchanges"][0]
    assert exchange["request"]["url"] == "http://fake.test/v1/chat/completions"
    assert exchange["request"]["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert json.loads(exchange["response"]["body"])["choices"][0]["message"]["content"] == "first"


def test_bytes_that_are_not_utf8_are_kept_as_base64() -> None:
    raw = b"data: \xff\xfe\n\n"
    piece = encode_piece(raw)
    assert piece == {"base64": "ZGF0YTog//4KCg=="}
    assert decode_piece(piece) == raw and decode_piece(encode_piece(b"ok")) == b"ok"


def test_secrets_come_from_key_headers_and_key_parameters() -> None:
    headers = {"Authorization": "Bearer sk-abcdef", "X-Other": "visible-value"}
    found = secrets_of("https://h/v1/x?key=query-secret&page=2", headers)
    assert found == {"Bearer sk-abcdef", "sk-abcdef", "query-secret"}


def test_the_diff_names_each_difference() -> None:
    recorded = {"model": "m", "messages": [{"content": "a"}], "n": 1}
    sent = {"model": "m", "messages": [{"content": "b"}, {"content": "c"}]}
    assert diff(recorded, sent) == [
        'body.messages[0].content: recorded "a", sent "b"',
        'body.messages[1]: recorded (nothing), sent {"content": "c"}',
        "body.n: recorded 1, sent (nothing)",
    ]


def test_a_replay_needs_no_key_but_a_recording_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded with OPENAI_API_KEY set, replayed in CI where it is not."""
    from agentloop import MissingAPIKeyError, OpenAI

    path = tmp_path / "keyed.json"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recorded-with-this-key-000")
    with FakeServer([reply("hello")]) as server, cassette(path):
        client = httpx.AsyncClient(transport=server.transport)
        model = OpenAI("gpt-4o-mini", base_url="http://fake.test/v1", http_client=client)
        assert Agent(model).run_sync("hi").output == "hello"
    assert "sk-recorded-with-this-key-000" not in path.read_text()
    monkeypatch.delenv("OPENAI_API_KEY")
    with cassette(path, "replay"):
        assert Agent(OpenAI("gpt-4o-mini")).run_sync("hi").output == "hello"
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"), cassette(path, "record"):
        Agent(OpenAI("gpt-4o-mini")).run_sync("hi")
