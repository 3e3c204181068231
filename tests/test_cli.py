"""The ``agentloop`` command against a real HTTP server on 127.0.0.1 (no network, no key)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.local_server import LocalServer, Recorded, Reply, sse
from support.terminal import CLEAR, Clock, Terminal, drained
from support.unreported import UNKNOWN

from agentloop import WorkingLine
from agentloop._cli import (
    _Answer,  # pyright: ignore[reportPrivateUsage]
    main,
)

TOOLS_MODULE = '''
from agentloop import tool

@tool
def get_weather(city: str) -> dict:
    """Current weather in a city."""
    return {"city": city, "celsius": 21}

def helper():  # not a tool: not loaded from the module, only by name
    return 1
'''


SCHEMA_MODULE = """
from pydantic import BaseModel

class Person(BaseModel):
    name: str
    age: int
"""


def completion(message: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
    }


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": function}],
    }


def answer(recorded: Recorded) -> Reply:
    body = recorded.json()
    last = body["messages"][-1]
    tools = [t["function"]["name"] for t in body.get("tools", [])]
    if "final_result" in tools or "response_format" in body:  # extraction
        found = re.search(r"(\w+) is (\d+)", body["messages"][-1]["content"])
        if found is None:
            return Reply(400, json_body={"error": {"message": "nothing to extract"}})
        person = {"name": found[1], "age": int(found[2])}
        if "final_result" in tools:
            message = call("final_result", person)
        else:  # a server without a profile is asked for a json_schema answer
            message = {"role": "assistant", "content": json.dumps(person)}
    elif last["role"] == "user" and "weather" in last["content"] and "get_weather" in tools:
        message = call("get_weather", {"city": "Oslo"})
    elif last["role"] == "tool":
        message = {"role": "assistant", "content": f"Tool said {last['content']}"}
    else:
        turns = sum(m["role"] == "user" for m in body["messages"])
        message = {"role": "assistant", "content": f"Echo {last['content']} (turn {turns})"}
    if not body.get("stream"):
        return Reply(json_body=completion(message))
    return Reply.stream(sse(*_chunks(message)))


def _chunks(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    if message.get("tool_calls"):
        calls = [{"index": 0, **c} for c in message["tool_calls"]]
        yield base | {
            "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": calls}}]
        }
        finish = "tool_calls"
    else:
        for word in re.findall(r"\S+\s*", message["content"]):
            yield base | {"choices": [{"index": 0, "delta": {"content": word}}]}
        finish = "stop"
    yield base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    usage = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
    yield base | {"choices": [], "usage": usage}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(answer) as running:
        yield running


def run_chat(monkeypatch: pytest.MonkeyPatch, lines: str, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = main(["chat", *args])
    return code, out.getvalue()


def test_chat_streams_calls_tools_and_keeps_the_history(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tools = tmp_path / "weather_tools.py"
    tools.write_text(TOOLS_MODULE)
    code, out = run_chat(
        monkeypatch,
        "hello\nwhat is the weather?\n/reset\nagain\n/exit\n",
        "--model", "m", "--base-url", server.base_url, "--tools", str(tools),
    )  # fmt: skip
    assert code == 0
    assert "Echo hello (turn 1)" in out
    assert '[tool get_weather] -> {\\"city\\":\\"Oslo\\",\\"celsius\\":21}' in out
    assert 'Tool said {"city":"Oslo","celsius":21}' in out
    assert "Echo again (turn 1)" in out  # /reset forgot the two turns before
    bodies = [r.json() for r in server.requests]
    checks = [b for b in bodies if not b.get("stream")]  # a learning model's one-token checks
    assert checks and all(b["max_tokens"] == 1 for b in checks)
    bodies = [b for b in bodies if b.get("stream")]
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["get_weather"]
    assert sum(m["role"] == "user" for m in bodies[1]["messages"]) == 2  # history was sent


def test_chat_loads_named_functions_and_prints_whole_answers(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "mytools.py").write_text(TOOLS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = run_chat(
        monkeypatch, "hi\n", "--model", "m", "--base-url", server.base_url,
        "--tools", "mytools:get_weather,helper", "--no-stream",
    )  # fmt: skip
    assert code == 0 and "Echo hi (turn 1)" in out
    body = server.requests[0].json()
    assert "stream" not in body or not body["stream"]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "helper"]


def test_extract_writes_jsonl_and_resumes(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "people.py"
    schema.write_text(SCHEMA_MODULE)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(["Ana is 31", "Bob is 40", "no person here"]):
        (folder / f"d{i}.txt").write_text(text)
    out = tmp_path / "out.jsonl"
    args = ["extract", "--model", "m", "--base-url", server.base_url, "--schema",
            f"{schema}:Person", "--input", str(folder), "--output", str(out),
            "--retries", "0"]  # fmt: skip
    assert main(args) == 1  # one document failed
    results = {r["key"]: r["output"] for r in map(json.loads, out.read_text().splitlines())}
    assert results == {"d0.txt": {"name": "Ana", "age": 31}, "d1.txt": {"name": "Bob", "age": 40}}
    failure = json.loads((tmp_path / "out.failures.jsonl").read_text())
    assert failure["key"] == "d2.txt" and failure["error"] == "BadRequestError"
    printed = capsys.readouterr()
    assert "succeeded 2, failed 1" in printed.out and "3/3 ok 2 failed 1" in printed.err
    requests = len(server.requests)
    assert main(args) == 1
    assert len(server.requests) == requests + 1  # only the failed document ran again
    assert "skipped 2" in capsys.readouterr().out


def test_extract_reads_jsonl_with_a_prompt_template(server: LocalServer, tmp_path: Path) -> None:
    (tmp_path / "people.py").write_text(SCHEMA_MODULE)
    records = tmp_path / "in.jsonl"
    records.write_text('{"id": "a", "who": "Cy", "years": 9}\n{"id": "b", "who": "Di"}\n')
    out = tmp_path / "o.jsonl"
    code = main([
        "extract", "--model", "m", "--base-url", server.base_url,
        "--schema", f"{tmp_path / 'people.py'}:Person", "--input", str(records),
        "--output", str(out), "--prompt", "{who} is {years}",
    ])  # fmt: skip
    assert code == 1
    assert json.loads(out.read_text())["output"] == {"name": "Cy", "age": 9}
    failure = json.loads((tmp_path / "o.failures.jsonl").read_text())
    assert failure["key"] == "b" and "no field 'years'" in failure["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", "nosuchmodule_xyz:Model"], "cannot import module 'nosuchmodule_xyz'"),
        (["--schema", "json:NoSuch"], "has no attribute 'NoSuch'"),
        (["--schema", "Person"], "must look like 'module:name'"),
        (["--schema", "json:dumps", "--input", "/nonexistent"], "neither a folder nor a file"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ["extract", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    rest = ["--input", str(tmp_path), "--output", str(tmp_path / "o.jsonl")]
    assert main([*base, *rest, *args]) == 2
    assert message in capsys.readouterr().err


def test_no_key_and_no_local_model_is_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.setattr("agentloop.local.local_available", lambda: False)
    assert main(["chat"]) == 2
    assert "OPENROUTER_API_KEY" in capsys.readouterr().err


def test_the_console_script_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from agentloop._cli import main; sys.exit(main())",
         "extract", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "--schema" in done.stdout and "--no-resume" in done.stdout


def _no_usage_answer(recorded: Recorded) -> Reply:
    body = recorded.json()
    text = f"Echo {body['messages'][-1]['content']}"
    if not body.get("stream"):
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return Reply(json_body={"id": "x", "model": "m", "choices": [choice]})
    base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": {"content": word}}]}
        for word in re.findall(r"\S+\s*", text)
    ]
    chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return Reply.stream(sse(*chunks))  # no usage chunk, whatever the request asked


@pytest.fixture
def no_usage_server() -> Iterator[LocalServer]:
    with LocalServer(_no_usage_answer) as running:
        yield running


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["streamed", "whole"])
def test_cli_chat_says_the_usage_is_unknown(
    no_usage_server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: list[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n/exit\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = main(["chat", "--model", "m", "--base-url", no_usage_server.base_url, *mode])
    assert code == 0
    text = out.getvalue()
    assert "agent> Echo hello" in text
    assert f"(1 requests, {UNKNOWN}, cost unknown, " in text
    assert "0/0 tokens" not in text
    assert capsys.readouterr().err == ""  # stderr is no terminal and the turn was quick
    assert bool(no_usage_server.requests[0].json().get("stream")) == (not mode)


def test_the_chat_answer_keeps_its_line_clear_of_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, tty, out = Clock(), Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    line = WorkingLine(tty, clock=clock)
    line.begin()
    answer = _Answer(line)
    clock.now += 2
    line.tick()  # the status has the line to itself: "agent> " waits
    assert out.getvalue() == "" and drained(tty).endswith("(2 s)")
    answer.write("Hello")
    assert out.getvalue() == "agent> Hello" and drained(tty) == CLEAR
    clock.now += 2
    line.tick()
    assert drained(tty) == ""  # mid-line: never drawn over the answer
    answer.write("\n  [tool f] -> done\n")
    line.begin()
    clock.now += 2
    line.tick()
    assert drained(tty).endswith("(2 s)")  # a fresh line: shown again
