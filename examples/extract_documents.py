"""Structured extraction over a folder of documents: bounded, resumable, failures accounted for.

    python examples/extract_documents.py [--out results.jsonl] [--concurrency 4]

Reads the invoices in ``examples/data/invoices/``, extracts an `Invoice` from each with
`agentloop.batch.run_batch` (bounded concurrency, a progress bar on stderr, per-document retries),
writes the results to JSONL and the failures beside them, and prints a summary of cost and
failures. Run it twice with the same ``--out``: the second run skips what already succeeded.

With OPENROUTER_API_KEY or OPENAI_API_KEY set it uses that provider (AGENTLOOP_MODEL overrides
the model; a cost cap of $0.05 applies). AGENTLOOP_DEMO=local runs the tiny local model
(SmolLM2-135M on llama.cpp: valid JSON, poor facts). Otherwise it runs offline against
agentloop's fake server, whose "model" is a scripted regex reader; one document is an
illegible scan on purpose, so the failure path shows too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, Field

from agentloop import Agent, Limits, Model, ModelSettings
from agentloop.batch import BatchSummary, read_folder, run_batch
from agentloop.testing import FakeServer, Reply, reply, tool_call

DOCUMENTS = Path(__file__).parent / "data" / "invoices"
PROMPT = "Extract the invoice below. Amounts are numbers; currency is an ISO code.\n\n{text}"


class LineItem(BaseModel):
    description: str
    quantity: Annotated[int, Field(ge=1)]
    unit_price: Annotated[float, Field(ge=0)]


class Invoice(BaseModel):
    vendor: Annotated[str, Field(min_length=1)]
    invoice_number: str
    date: str = Field(description="YYYY-MM-DD")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    total: Annotated[float, Field(ge=0)]
    line_items: Annotated[list[LineItem], Field(min_length=1)]


def scripted_reader(body: dict[str, Any]) -> Reply:
    """The offline "model": reads the invoice in the first user message with regexes."""
    document = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = {
        "vendor": re.search(r"From: (.+)", document),
        "invoice_number": re.search(r"No\. (\S+)", document),
        "date": re.search(r"Date: (\S+)", document),
        "total": re.search(r"TOTAL DUE: ([\d.]+) ([A-Z]{3})", document),
    }
    rows = re.findall(r"^(.+?)\s{2,}(\d+)\s+([\d.]+)$", document, re.MULTILINE)
    answer: dict[str, Any] = {k: m.group(1) for k, m in found.items() if m}
    if found["total"]:
        answer |= {"total": float(found["total"].group(1)), "currency": found["total"].group(2)}
    answer["line_items"] = [
        {"description": d.strip(), "quantity": int(q), "unit_price": float(p)} for d, q, p in rows
    ]
    if any(t["function"]["name"] == "final_result" for t in body.get("tools", [])):
        return tool_call(("final_result", answer))
    return reply(answer)


def choose_model(stack: Any) -> tuple[Model | str, str, int]:
    """The model, a line saying where it runs, and the concurrency that suits it."""
    demo = os.environ.get("AGENTLOOP_DEMO", "")
    if demo not in ("fake", "local"):
        if os.environ.get("OPENROUTER_API_KEY"):
            name = os.environ.get("AGENTLOOP_MODEL", "openrouter:openai/gpt-4o-mini")
            return name, f"OpenRouter, {name}", 4
        if os.environ.get("OPENAI_API_KEY"):
            name = os.environ.get("AGENTLOOP_MODEL", "openai:gpt-4o-mini")
            return name, f"OpenAI, {name}", 4
    if demo == "local":
        from agentloop.local import LocalServer

        server = stack.enter_context(LocalServer(n_ctx=4096))
        return server.model(), "LOCAL: SmolLM2-135M on llama.cpp (valid JSON, poor facts)", 1
    fake = FakeServer([scripted_reader] * 200, model_name="gpt-4o-mini")
    where = "OFFLINE: agentloop's fake server; the 'model' is a scripted regex reader"
    return fake.model(), where, 4


async def extract(
    model: Model | str, out: Path, concurrency: int, progress: bool = True
) -> BatchSummary:
    agent = Agent(
        model,
        instructions="You extract invoices exactly as written. Never invent values.",
        output_type=Invoice,
        settings=ModelSettings(temperature=0.0, max_completion_tokens=400),
        limits=Limits(max_requests=4, max_cost=0.05),
    )
    return await run_batch(
        agent,
        read_folder(DOCUMENTS, "*.txt"),
        out,
        prompt=lambda doc: PROMPT.format(text=doc["text"]),
        concurrency=concurrency,
        retries=1,
        max_cost=0.05,
        progress=progress,
    )


def main(argv: list[str] | None = None) -> BatchSummary:
    from contextlib import ExitStack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    default_out = Path(tempfile.gettempdir()) / "agentloop-invoices.jsonl"
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        model, where, concurrency = choose_model(stack)
        print(f"== agentloop extraction ({where})")
        print(f"documents: {DOCUMENTS}  results: {args.out}\n")
        summary = anyio.run(extract, model, args.out, args.concurrency or concurrency)
    print(f"\n{summary}")
    for line in args.out.read_text().splitlines()[:3] if args.out.exists() else []:
        record = json.loads(line)
        print(f"  {record['key']}: {json.dumps(record['output'])[:110]}...")
    failures = args.out.with_name(args.out.stem + ".failures.jsonl")
    if failures.exists():
        print(f"failures logged in {failures}")
    return summary


if __name__ == "__main__":
    main()
