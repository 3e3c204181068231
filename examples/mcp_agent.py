"""An agent with an MCP server's tools: the notes server of `examples/mcp_notes/server.py`.

    python examples/mcp_agent.py

The server is started as a child process when the run starts (over stdio, by the official MCP
SDK) and stopped when it ends; its tools are offered under the prefix ``notes_``. With
OPENROUTER_API_KEY or OPENAI_API_KEY it runs on that provider; without a key, on the tiny local
model when it is installed (AGENTLOOP_DEMO=local requires it), else offline: the model's answers
are scripted and the MCP server and its tools are real (AGENTLOOP_DEMO=fake).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from _common import pick_model, settings_for

from agentloop import Agent, Message, RunResult, ToolMessage, UsageLimitExceeded
from agentloop.mcp import MCPServer
from agentloop.testing import reply, tool_call

SERVER = Path(__file__).with_name("mcp_notes") / "server.py"
PROMPT = "What do my notes say about trio? Search them, then read the note."
SCRIPT = [
    tool_call(("notes_search", {"query": "trio"})),
    tool_call(("notes_read", {"title": "trio"})),
    reply("Your note says trio runs async code with structured concurrency (nurseries)."),
]


def show(messages: list[Message]) -> None:
    """What the server's tools answered."""
    for message in messages:
        if isinstance(message, ToolMessage):
            print(f"  {message.name} -> {message.content[:70]!r}")


def main() -> RunResult[str] | None:
    notes = MCPServer.stdio(sys.executable, [str(SERVER)], name="notes", prefix="notes_")
    with ExitStack() as stack:
        model, fake, where = pick_model(stack, SCRIPT)
        print(f"[{where}]")
        agent = Agent(model, toolsets=[notes], settings=settings_for(where), max_turns=6)
        try:
            result = agent.run_sync(PROMPT)
        except UsageLimitExceeded as exc:  # the tiny local model may loop on its tools
            show(exc.messages)
            print(f"(the run stopped: {exc})")
            return None
        show(result.messages)
        print(result.output)
        if fake is not None:
            fake.assert_done()
        return result


if __name__ == "__main__":
    main()
