"""A task agent: a support desk with several tools, shared dependencies, and approval for refunds.

    python examples/task_agent.py

The agent looks orders up, refunds them and writes to the customer. Its tools read one `Shop`
passed as ``deps=`` (through `RunContext`); `issue_refund` is marked ``requires_approval=True``,
so it runs only when the approver says yes: here, refunds up to $50 are approved and larger ones
are refused, and the refusal goes back to the model as the tool's result.

With OPENROUTER_API_KEY or OPENAI_API_KEY it runs on that provider (cost capped at $0.05);
without a key, on the tiny local model when it is installed (AGENTLOOP_DEMO=local requires it),
else offline: the model's answers are scripted and the tools are real (AGENTLOOP_DEMO=fake).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from _common import pick_model, settings_for

from agentloop import (
    Agent,
    AssistantMessage,
    Limits,
    RunContext,
    RunResult,
    ToolCall,
    ToolMessage,
    UsageLimitExceeded,
    tool,
)
from agentloop.testing import reply, tool_call

APPROVAL_LIMIT = 50.0
PROMPT = (
    "Customer ana@example.com says order A17 arrived broken and order B42 never came. "
    "Refund what is fair and email her what you did."
)


@dataclass
class Shop:
    orders: dict[str, dict[str, Any]]
    refunds: list[tuple[str, float]] = field(default_factory=list)
    outbox: list[dict[str, str]] = field(default_factory=list)
    decisions: list[tuple[str, bool]] = field(default_factory=list)


def demo_shop() -> Shop:
    email = "ana@example.com"
    return Shop({
        "A17": {"email": email, "item": "teapot", "total": 34.0, "status": "delivered"},
        "B42": {"email": email, "item": "espresso machine", "total": 420.0, "status": "lost"},
    })  # fmt: skip


@tool
def find_order(ctx: RunContext[Shop], order_id: str) -> dict[str, Any]:
    """Look an order up.

    Args:
        order_id: the order's id, e.g. "A17".
    """
    order = ctx.deps.orders.get(order_id.strip().upper())
    return {"order_id": order_id, **order} if order else {"error": f"no order {order_id}"}


@tool(requires_approval=True)
def issue_refund(ctx: RunContext[Shop], order_id: str, amount: float, reason: str) -> str:
    """Refund an order (needs a human's approval).

    Args:
        order_id: the order to refund.
        amount: USD to refund.
        reason: why, in a few words.
    """
    ctx.deps.refunds.append((order_id, amount))
    return f"refunded ${amount:.2f} on {order_id} ({reason})"


@tool
def send_email(ctx: RunContext[Shop], to: str, subject: str, body: str) -> str:
    """Send an email to a customer.

    Args:
        to: the address.
        subject: the subject line.
        body: the text.
    """
    ctx.deps.outbox.append({"to": to, "subject": subject, "body": body})
    return "sent"


def approver(call: ToolCall, ctx: RunContext[Shop]) -> bool:
    """The human in the loop: small refunds yes, large ones no (a real app would ask)."""
    amount = float(json.loads(call.arguments).get("amount", 0))  # validated before approval
    approved = amount <= APPROVAL_LIMIT
    ctx.deps.decisions.append((call.arguments, approved))
    print(f"  approval asked: {call.name}({call.arguments}) -> {'YES' if approved else 'NO'}")
    return approved


def offline_script() -> list[Any]:
    return [
        tool_call(("find_order", {"order_id": "A17"}), ("find_order", {"order_id": "B42"})),
        tool_call(
            ("issue_refund", {"order_id": "A17", "amount": 34.0, "reason": "arrived broken"}),
            ("issue_refund", {"order_id": "B42", "amount": 420.0, "reason": "lost in transit"}),
        ),
        tool_call((
            "send_email",
            {
                "to": "ana@example.com",
                "subject": "Your orders A17 and B42",
                "body": "A17 is refunded ($34). B42's refund ($420) needs a manager; we will "
                "write again within a day.",
            },
        )),
        reply("Refunded A17 ($34); the $420 refund for B42 was not approved and is escalated. "
              "Ana has been emailed."),
    ]  # fmt: skip


def main() -> tuple[RunResult[str] | None, Shop]:
    shop = demo_shop()
    with ExitStack() as stack:
        model, server, where = pick_model(stack, offline_script())
        print(f"== agentloop task agent ({where})\n\nuser: {PROMPT}\n")
        agent = Agent(
            model,
            instructions="You run a shop's support desk. Check orders before refunding. "
            "Refunds need approval; if one is refused, tell the customer it is escalated.",
            tools=[find_order, issue_refund, send_email],
            approver=approver,
            settings=settings_for(where),
            limits=Limits(max_requests=8, max_cost=0.05 if server is None else None),
        )
        try:
            result = agent.run_sync(PROMPT, deps=shop)
        except UsageLimitExceeded as exc:
            print(f"\nthe model did not finish within its limits ({exc.limit}); transcript kept")
            return None, shop
        if server is not None:
            server.assert_done()
    show(result, shop)
    return result, shop


def show(result: RunResult[str], shop: Shop) -> None:
    answers = {m.tool_call_id: m.content for m in result.messages if isinstance(m, ToolMessage)}
    print("\ntool calls (arguments -> result):")
    for message in result.messages:
        for call in message.tool_calls if isinstance(message, AssistantMessage) else ():
            print(f"  {call.name}({call.arguments}) -> {answers.get(call.id)}")
    print(f"\nrefunds made: {shop.refunds}\nemails sent: {len(shop.outbox)}")
    print(f"\nagent: {result.output}")
    cost = "unknown" if result.cost is None else f"${result.cost:.6f}"
    print(f"\nrequests={result.usage.requests} tool_calls={result.usage.tool_calls} cost={cost}")


if __name__ == "__main__":
    main()
