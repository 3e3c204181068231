"""The accuracy benchmark's ChatML template with tools (``tools/bfcl/run.py --chat-template``)
on the real llama-server: the server then offers SmolLM2 the tools natively."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from agentloop.local import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from bfcl.run import CHATML_TOOLS

TOOL = {
    "type": "function",
    "function": {
        "name": "math_factorial",
        "description": "Calculate the factorial of a number.",
        "parameters": {
            "type": "object",
            "properties": {"number": {"type": "integer"}},
            "required": ["number"],
        },
    },
}


def test_llama_server_offers_tools_with_the_template() -> None:
    extra = ("--chat-template-file", str(CHATML_TOOLS))
    with LocalServer(backend="llama-server", n_ctx=2048, extra_args=extra) as server:
        assert server.supports_tools is True
        assert server.model().profile.tool_mode == "native"
        body = {"model": "m", "messages": [{"role": "user", "content": "5!?"}], "max_tokens": 1}
        url = f"{server.base_url}/chat/completions"
        with httpx.Client(timeout=60) as client:
            plain = client.post(url, json=body).json()["usage"]["prompt_tokens"]
            response = client.post(url, json={**body, "tools": [TOOL]})
    assert response.status_code == 200
    with_tools = response.json()["usage"]["prompt_tokens"]
    assert with_tools > plain + 20, "the tools did not reach the prompt"
