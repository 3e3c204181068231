"""`Agent` as immutable configuration: `replace`, and the plan a run reads instead of the agent."""

from __future__ import annotations

from typing import Any

import pytest

from agentloop import Agent, Limits, ModelSettings, UsageError, tool
from agentloop._agent import _OPTIONS  # pyright: ignore[reportPrivateUsage]
from agentloop.testing import FunctionModel, call, calls

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _approve(*_: Any) -> bool:
    return True


def _policy(messages: list[Any], budget: Any) -> list[Any]:
    return messages


def _every_option_changed() -> dict[str, Any]:
    """A value other than the default for every constructor option but the model."""
    return {
        "instructions": "Be brief.",
        "tools": [add],
        "output_type": int,
        "settings": ModelSettings(temperature=0.5),
        "max_turns": 4,
        "limits": Limits(max_requests=9),
        "output_mode": "tool",
        "output_retries": 5,
        "output_validators": [lambda value: value],
        "strict": False,
        "tool_concurrency": 3,
        "tool_errors": "raise",
        "max_tool_result_chars": 99,
        "approver": _approve,
        "history_policy": _policy,
    }


def test_replace_with_no_changes_keeps_every_option() -> None:
    options = _every_option_changed()
    assert set(options) | {"model"} == set(_OPTIONS), "a constructor option is not covered here"
    agent = Agent(FunctionModel(lambda m, i: "x"), **options)
    copy = agent.replace()
    assert copy is not agent
    assert copy.model is agent.model
    for name in _OPTIONS:
        if name in ("model", "max_turns", "tools", "output_validators"):
            continue
        assert getattr(copy, name) == getattr(agent, name), name
    assert copy.tools == agent.tools
    assert copy.output_validators == agent.output_validators
    assert copy.limits == Limits(max_requests=9, max_turns=4)


def test_replace_changes_only_what_it_is_given_and_leaves_the_original() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"), instructions="a", tool_concurrency=2)
    other = agent.replace(instructions="b", max_turns=3)
    assert (agent.instructions, other.instructions) == ("a", "b")
    assert other.tool_concurrency == 2
    assert agent.limits.max_turns is None and other.limits.max_turns == 3
    replaced_model = agent.replace(model="openai:gpt-4o-mini")
    assert replaced_model.model.name == "gpt-4o-mini"


def test_replace_rejects_unknown_options_before_anything_runs() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(UsageError, match="tool_concurency"):
        agent.replace(tool_concurency=3)


def test_agents_stay_immutable() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(AttributeError, match="replace"):
        agent.instructions = "no"  # type: ignore[misc]


async def test_a_replaced_agent_runs_with_its_own_tools() -> None:
    def answer(messages: list[Any], info: Any) -> Any:
        if messages[-1].role == "tool":
            return messages[-1].content
        assert info.tool_names == ["mul"], "the replaced agent must offer its own tools only"
        return calls(call("mul", {"a": 6, "b": 7}))

    agent = Agent(FunctionModel(answer), tools=[add])
    result = await agent.replace(tools=[mul]).run("6 times 7?")
    assert result.output == "42"
    assert [t.name for t in agent.tools] == ["add"]


async def test_replace_of_the_tool_names_rechecks_them() -> None:
    agent = Agent(FunctionModel(lambda m, i: "x"))
    with pytest.raises(UsageError, match="two tools"):
        agent.replace(tools=[add, add])
