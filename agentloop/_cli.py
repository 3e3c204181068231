"""The ``agentloop`` command: ``agentloop chat`` and ``agentloop extract``.

The model is ``--model`` (``openai:gpt-4o-mini``, ``openrouter:openai/gpt-4o-mini``, ``local``
for SmolLM2 on llama.cpp, or any name with ``--base-url`` for a compatible server); by default
a provider whose key is set, else the local model. Exit codes: 0 done, 1 some items failed or
the run failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ._agent import Agent
from ._cli_load import load_object, load_tools, open_model
from ._errors import AgentloopError, UsageError
from ._events import TextDelta, ToolCallFinished, ToolCallStarted
from ._limits import Limits
from ._messages import Message
from ._progress import WorkingLine

__all__ = ["main"]

DEFAULT_TEMPLATE = "Extract the data from this document.\n\n{text}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentloop", description="tool-calling agents from the command line"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="an interactive session, streamed")
    _model_options(chat)
    chat.add_argument(
        "--tools",
        action="append",
        default=[],
        metavar="MODULE[:NAMES]",
        help="tools: every @tool of a module or file, or 'module:f,g' (repeatable)",
    )
    chat.add_argument("--instructions", default=None, help="the system prompt")
    chat.add_argument("--no-stream", action="store_true", help="print whole answers")
    extract = commands.add_parser("extract", help="structured extraction to JSONL, resumable")
    _model_options(extract)
    extract.add_argument(
        "--schema",
        required=True,
        metavar="MODULE:MODEL",
        help="the output type, e.g. 'invoices.py:Invoice'",
    )
    extract.add_argument(
        "--input",
        required=True,
        type=Path,
        help="a folder of documents or a JSONL file (records with 'text')",
    )
    extract.add_argument("--pattern", default="*", help="files of the folder to read (a glob)")
    extract.add_argument("--output", required=True, type=Path, help="results JSONL")
    extract.add_argument("--instructions", default="Extract exactly what the document says.")
    extract.add_argument(
        "--prompt",
        default=DEFAULT_TEMPLATE,
        help="template over a record's fields (default: %(default)r)",
    )
    extract.add_argument("--concurrency", type=int, default=8)
    extract.add_argument("--retries", type=int, default=2, help="further attempts of an item")
    extract.add_argument("--no-resume", action="store_true", help="redo finished documents")
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="e.g. openrouter:openai/gpt-4o-mini, openai:gpt-4o-mini, local",
    )
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server")
    parser.add_argument("--api-key-env", default=None, help="variable holding its API key")
    parser.add_argument("--max-cost", type=float, default=None, help="USD cap per run")
    parser.add_argument("--max-requests", type=int, default=20, help="requests cap per run")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentloop`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        with ExitStack() as stack:
            model = open_model(stack, args.model, args.base_url, args.api_key_env)
            limits = Limits(max_requests=args.max_requests, max_cost=args.max_cost)
            if args.command == "chat":
                tools = [t for spec in args.tools for t in load_tools(spec)]
                agent = Agent(model, instructions=args.instructions, tools=tools, limits=limits)
                return anyio.run(_chat, agent, not args.no_stream)
            agent = Agent(model, **_extract_options(args, limits))
            return anyio.run(_extract, args, agent, _inputs(args.input, args.pattern))
    except UsageError as exc:
        print(f"agentloop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _extract_options(args: argparse.Namespace, limits: Limits) -> dict[str, Any]:
    schema = load_object(args.schema)
    if args.concurrency < 1 or args.retries < 0:
        raise UsageError("--concurrency must be >= 1 and --retries >= 0")
    return {"output_type": schema, "instructions": args.instructions, "limits": limits}


def _inputs(path: Path, pattern: str) -> Iterable[dict[str, Any]]:
    from .batch import read_folder, read_jsonl

    if path.is_dir():
        return read_folder(path, pattern)
    if path.is_file():
        return read_jsonl(path)
    raise UsageError(f"--input {str(path)!r} is neither a folder nor a file")


async def _extract(
    args: argparse.Namespace, agent: Agent[Any], inputs: Iterable[dict[str, Any]]
) -> int:
    from .batch import JSONLSink, run_batch

    template: str = args.prompt

    def prompt(record: dict[str, Any]) -> str:
        try:
            return template.format_map(record)
        except KeyError as exc:
            raise UsageError(f"the record has no field {exc} for --prompt") from None

    sink = JSONLSink(args.output)
    summary = await run_batch(
        agent,
        inputs,
        sink,
        prompt=prompt,
        concurrency=args.concurrency,
        retries=args.retries,
        resume=not args.no_resume,
        progress=True,
    )
    print(summary)
    print(f"results: {sink.path}")
    if summary.failed:
        print(f"failures: {sink.failures_path}")
    return 1 if summary.failed or summary.stopped else 0


async def _chat(agent: Agent[Any], stream: bool) -> int:
    history: list[Message] = []
    out = sys.stdout
    out.write(f"agentloop chat with {agent.model.name}: /reset forgets, /exit leaves\n")
    while True:
        out.write("you> ")
        out.flush()
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line or line.strip() in ("/exit", "/quit"):
            out.write("\n")
            return 0
        text = line.strip()
        if text == "/reset":
            history = []
            out.write("(history cleared)\n")
            continue
        if text:
            history = await _turn(agent, text, history, stream)


class _Answer:
    """The agent's side of a turn on stdout, ``agent> `` first, kept clear of the status line.

    The prefix waits for the first output, so that the status line (stderr, while the model
    works) has a line of its own; the status line stays hidden while the output is mid-line.
    """

    def __init__(self, line: WorkingLine) -> None:
        self.line = line
        self.started = False

    def write(self, text: str) -> None:
        if not text and self.started:
            return
        self.line.clear()
        if not self.started:
            self.started = True
            text = "agent> " + text
        sys.stdout.write(text)
        sys.stdout.flush()
        self.line.held = not text.endswith("\n")


async def _turn(
    agent: Agent[Any], text: str, history: list[Message], stream: bool
) -> list[Message]:
    async with WorkingLine() as line:
        answer = _Answer(line)
        # Typed input ended its line; piped input left the cursor after "you> ": keep that.
        line.held = line.tty and not _isatty(sys.stdin)
        try:
            if stream:
                async with agent.run_stream(text, history=history) as run:
                    async for event in run:
                        line.feed(event)
                        _show(event, answer)
                result = run.result
            else:
                result = await agent.run(text, history=history)
                answer.write(str(result.output))
        except AgentloopError as exc:
            answer.write(f"\n[error] {type(exc).__name__}: {exc}\n")
            return history
    usage = result.usage
    cost = "cost unknown" if result.cost is None else f"${result.cost:.5f}"
    answer.write(
        f"\n  ({usage.requests} requests, {usage.describe_tokens()}, {cost}, "
        f"{result.timing.latency:.2f} s)\n"
    )
    return result.messages


def _isatty(stream: object) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _show(event: object, answer: _Answer) -> None:
    if isinstance(event, TextDelta):
        answer.write(event.text)
    elif isinstance(event, ToolCallStarted):
        answer.write(f"\n  [tool {event.name}] ")
    elif isinstance(event, ToolCallFinished):
        shown = event.result if len(event.result) <= 200 else event.result[:200] + "..."
        mark = "error: " if event.is_error else ""
        answer.write(f"-> {mark}{json.dumps(shown)[1:-1]}\n")


if __name__ == "__main__":
    sys.exit(main())
