"""The pytest plugin: the `cassette` fixture records beside the test, then replays; its mode
comes from ``--cassette-mode`` or the environment; a failed test keeps no recording."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER = """
from agentloop import Agent
from agentloop.testing import FakeServer, reply


def test_weather(cassette):
    # a FakeServer with no script fails any request that reaches it: only a replay passes then
    script = [reply("sunny")] if cassette.recording else []
    with FakeServer(script) as server:
        assert Agent(server.model()).run_sync("weather?").output == "sunny"


def test_fails(cassette):
    with FakeServer([reply("sunny")]) as server:
        Agent(server.model()).run_sync("weather?")
    assert False, "the test itself fails"
"""


def _plugin_args() -> list[str]:
    """``-p`` the plugin unless its entry point is installed (pytest then loads it itself)."""
    installed = any(ep.name == "agentloop" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "agentloop.testing._pytest_plugin"]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("AGENTLOOP_CASSETTE_MODE", raising=False)
    pytester.makepyfile(test_inner=INNER)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider", *args)


def test_records_beside_the_test_then_replays(inner: pytest.Pytester) -> None:
    first = _run(inner, "-k", "weather")
    first.assert_outcomes(passed=1, deselected=1)
    path = inner.path / "cassettes" / "test_inner" / "test_weather.json"
    exchanges = json.loads(path.read_text())["exchanges"]
    assert exchanges[0]["request"]["body"]["messages"][-1]["content"] == "weather?"
    _run(inner, "-k", "weather").assert_outcomes(passed=1, deselected=1)  # replayed


def test_a_failed_test_keeps_no_recording(inner: pytest.Pytester) -> None:
    _run(inner, "-k", "fails").assert_outcomes(failed=1, deselected=1)
    assert not (inner.path / "cassettes" / "test_inner" / "test_fails.json").exists()


def test_the_mode_comes_from_the_option_or_the_environment(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = _run(inner, "-k", "weather", "--cassette-mode=replay")
    replay.assert_outcomes(errors=1, deselected=1)  # nothing recorded yet: the fixture fails
    assert "CassetteError" in replay.stdout.str() and "does not exist" in replay.stdout.str()
    monkeypatch.setenv("AGENTLOOP_CASSETTE_MODE", "replay")
    _run(inner, "-k", "weather").assert_outcomes(errors=1, deselected=1)
    monkeypatch.setenv("AGENTLOOP_CASSETTE_MODE", "record")
    _run(inner, "-k", "weather").assert_outcomes(passed=1, deselected=1)
    monkeypatch.setenv("AGENTLOOP_CASSETTE_MODE", "replay")
    _run(inner, "-k", "weather").assert_outcomes(passed=1, deselected=1)


def test_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, agentloop.testing._pytest_plugin; "
        "print(sorted(m for m in ('agentloop._agent', 'agentloop.testing._cassette', "
        "'agentloop.testing._fake_server', 'aiohttp', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.strip()
    assert "_cassette" not in loaded and "_fake_server" not in loaded and "aiohttp" not in loaded


def test_the_fixture_path_is_safe_for_parametrized_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_param="""
import pytest

@pytest.mark.parametrize("city", ["a/b c"])
def test_city(cassette, city):
    assert cassette.path.name == "test_city[a_b_c].json"
    assert cassette.path.parent.name == "test_param"
"""
    )
    _run(pytester).assert_outcomes(passed=1)


def test_the_entry_point_is_declared() -> None:
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nagentloop = "agentloop.testing._pytest_plugin"' in text
