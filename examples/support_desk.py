"""A support desk of three agents: triage asks orders, hands refunds to billing, a person approves.

    python examples/support_desk.py

`triage` runs the `orders` agent as a tool (``orders.as_tool()``) to look the order up, then hands
the conversation to `billing` (``handoffs=[billing]`` offers it the tool ``transfer_to_billing``).
Billing's `refund` tool is marked ``requires_approval=True`` and the agents use
``approver="defer"``: the run stops before the refund runs, its state is saved as JSON (to a file
here; a database row or a queue message in a real desk), and ``resume_sync`` goes on once a
person said yes, with the agent that was answering: billing.

With OPENROUTER_API_KEY or OPENAI_API_KEY it runs on that provider; without a key, on the tiny
local model when it is installed (AGENTLOOP_DEMO=local requires it), else offline: the model's
answers are scripted and the tools are real (AGENTLOOP_DEMO=fake).
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from _common import pick_model, settings_for

from agentloop import (
    Agent,
    Model,
    ModelSettings,
    RunResult,
    ToolMessage,
    UsageLimitExceeded,
    tool,
)
from agentloop.testing import reply, tool_call

PROMPT = "Order A17 arrived broken: please refund the 34 USD."
SCRIPT = [
    tool_call(("orders", {"prompt": "What is the status of order A17?"})),  # triage
    tool_call(("order_status", {"order_id": "A17"})),  # orders, run as triage's tool
    reply("A17 (a teapot, 34 USD) was delivered on 2 May."),  # orders
    tool_call(("transfer_to_billing", {})),  # triage hands over
    tool_call(("refund", {"order_id": "A17", "amount": 34.0})),  # billing: the run stops here
    reply("Done: 34 USD refunded on order A17. Sorry about the teapot!"),  # billing, resumed
]
REFUNDS: list[tuple[str, float]] = []  # the refunds made, in order


@tool
def order_status(order_id: str) -> str:
    """Where an order stands.

    Args:
        order_id: the order's id, e.g. "A17".
    """
    orders = {"A17": "teapot, 34 USD, delivered on 2 May"}
    return orders.get(order_id.strip().upper(), f"no order {order_id}")


@tool(requires_approval=True)
def refund(order_id: str, amount: float) -> str:
    """Refund an order (a person approves it first).

    Args:
        order_id: the order to refund.
        amount: USD to refund.
    """
    REFUNDS.append((order_id, amount))
    return f"refunded {amount:.2f} USD on {order_id}"


def desk(model: Model | str, settings: ModelSettings | None) -> Agent[str]:
    """The triage agent, with the orders agent as a tool and billing to hand over to."""
    orders = Agent(
        model, name="orders", instructions="Answer with the order's status.",
        tools=[order_status], settings=settings,
    )  # fmt: skip
    billing = Agent(
        model, name="billing", instructions="Refund what the customer asks, then tell them.",
        tools=[refund], approver="defer", settings=settings,
    )  # fmt: skip
    return Agent(
        model, name="triage",
        instructions="Look the order up with the orders tool, then transfer refunds to billing.",
        tools=[orders.as_tool()], handoffs=[billing], approver="defer", settings=settings,
        max_turns=6,
    )  # fmt: skip


def main() -> tuple[RunResult[str], list[tuple[str, float]]] | None:
    REFUNDS.clear()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        model, fake, where = pick_model(stack, SCRIPT)
        print(f"[{where}]\nuser: {PROMPT}")
        triage = desk(model, settings_for(where))
        try:
            result = triage.run_sync(PROMPT)
            while result.pending_approvals:  # one pause per turn that asks for a refund
                saved = Path(tmp) / "run.json"  # any store will do: another process resumes
                saved.write_text(result.state_json())
                for call in result.pending_approvals:
                    print(f"{result.agent} waits for approval: {call.tool}({call.arguments})")
                print(f"run saved ({saved.stat().st_size} bytes); the example approves it")
                approvals = {call.id: True for call in result.pending_approvals}
                result = triage.resume_sync(saved.read_text(), approvals=approvals)
        except UsageLimitExceeded as exc:  # the tiny local model may loop on its tools
            print(f"(the run stopped: {exc})")
            return None
        if fake is not None:
            fake.assert_done()
    for message in result.messages:  # the tools' answers (the orders agent's run is its own)
        if isinstance(message, ToolMessage):
            print(f"  {message.name} -> {message.content[:70]!r}")
    print(f"{result.agent}: {result.output}\nrefunds made: {REFUNDS}")
    if not REFUNDS:  # a real model may answer without asking for a refund
        print("(the run ended without a refund)")
        return None
    by_agent = {name: usage.requests for name, usage in result.usage_by_agent.items()}
    print(f"requests by agent: {by_agent}")
    return result, list(REFUNDS)


if __name__ == "__main__":
    main()
