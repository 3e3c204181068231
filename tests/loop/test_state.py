"""`RunState`: the loop's one record of a run; the stages and the guard only return values.

Also the model's token counter: one per run, shared by the fit step and the limit guard, so a
turn counts its request once, with the model's own profile.
"""

from __future__ import annotations

import pytest

from agentloop import Limits, RequestUsage
from agentloop._loop.guard import LimitGuard
from agentloop._loop.state import RunState
from agentloop._messages import AssistantMessage, ModelResponse
from agentloop._wire.request_tokens import counter_for
from agentloop.testing import FunctionModel

pytestmark = pytest.mark.anyio


def _response(usage: RequestUsage) -> ModelResponse:
    message = AssistantMessage(content="hi")
    return ModelResponse(message, usage, "stop", "stop", "gpt-4o-mini", "id")


def test_the_state_accounts_and_the_guard_only_decides() -> None:
    model = FunctionModel(lambda m, i: "x", name="gpt-4o-mini")
    state = RunState(None, model)
    guard = LimitGuard(Limits(max_cost=1.0), "gpt-4o-mini", counter_for(model))
    response = _response(RequestUsage(1_000, 100))
    guard.after_request(state, response)
    assert state.usage.requests == 0 and state.cost == 0.0 and state.messages == []
    state.add_response(response)
    assert state.usage.requests == 1 and state.usage.input_tokens == 1_000
    assert state.cost is not None and state.cost > 0
    assert state.messages == [response.message]
