"""The start-up check: one request to a working server, the exit code of one that crashes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from support.local_fakes import fake

from agentloop import UsageError
from agentloop.local import LocalServer, _check
from agentloop.local import __main__ as cli


def test_the_check_sends_one_request_to_a_working_server(
    weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_check, "LocalServer", functools.partial(fake, weights, "serve"))
    monkeypatch.setattr(cli, "installed", lambda backend: backend == "llama-server")
    assert cli.main(["check"]) == 0
    assert "check llama-server: ok, it answered 'hello' in" in capsys.readouterr().out


def test_the_check_fails_with_the_exit_code_of_a_server_that_crashes(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _check, "LocalServer", functools.partial(fake, weights, "segfault-on-request")
    )
    ok, said = _check.check_backend("llama-server")
    assert not ok and "-11 (SIGSEGV)" in said and "GGML_ASSERT" in said
    monkeypatch.setattr(_check, "LocalServer", functools.partial(fake, weights, "exit-3"))
    ok, said = _check.check_backend("llama-server")
    assert not ok and "exited with code 3 before it answered" in said


def test_the_check_of_a_missing_model_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(**_: Any) -> LocalServer:
        raise UsageError("the SmolLM2 weights are not installed")

    monkeypatch.setattr(_check, "LocalServer", missing)
    assert _check.check_backend("llama-cpp-python") == (
        False,
        "the SmolLM2 weights are not installed",
    )
