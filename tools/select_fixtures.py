"""Copy a representative, deterministic set of shared recordings into tests/fixtures/recordings.

Usage: python tools/select_fixtures.py [SHARED_REALTRAFFIC]   (default ../shared/realtraffic)

Picks, among files under 200 KB: every issue body; for every feature tag and every provider
host, the smallest recording that carries it and the smallest streamed one (streams are where
the quirks are); and the recordings named in MUST_HAVE, which show one quirk each. Ties are
broken by name, so the selection is the same on every run. The old copies are replaced.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

MAX_SIZE = 200_000
PER_KEY = 1
MUST_HAVE = (
    "cases/pydantic-ai__test_openrouter__test_openrouter_stream_error.json",
    "cases/pydantic-ai__test_groq__test_tool_use_failed_error_streaming__0.json",
    "cases/pydantic-ai__test_mistral__test_mistral_model_thinking_part_iter.json",
    "cases/pydantic-ai__test_openai__test_compatible_api_with_tool_calls_without_id__0.json",
    "cases/mirascope__test_refusal__openai_gpt_4o_completions__stream.json",
    "cases/otel-contrib__test_chat_completion_multiple_choices_streaming.json",
    "cases/otel-contrib__test_chat_completion_multiple_choices.json",
    "cases/pydantic-ai__test_groq__test_groq_model_thinking_part_iter__0.json",
    "cases/pydantic-ai__test_openrouter__test_openrouter_streaming_reasoning.json",
    "cases/pydantic-ai__test_openai__test_invalid_response.json",
    "cases/pydantic-ai__test_openrouter__test_openrouter_tool_optional_parameters.json",
    "cases/pydantic-ai__test_snowflake__test_snowflake_tool_calling__0.json",
    "response_only/vercel-ai__openai-compatible__chat__anthropic-fallback-tool-call__sse.json",
    "response_only/vercel-ai__openai__chat__azure-model-router.1__chunks.json",
)


def select(root: Path) -> list[Path]:
    files = sorted(p for p in root.glob("*/*.json") if p.stat().st_size <= MAX_SIZE)
    by_key: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        keys = [f"feature:{tag}" for tag in record.get("features") or []]
        keys.append(f"host:{record.get('host') or record.get('provider')}")
        if "sse_events" in record["response"]:
            keys += [f"stream-{key}" for key in keys]
        for key in keys:
            by_key[key].append(path)
    chosen = {p for p in files if p.parent.name == "issue_bodies"}
    chosen.update(root / name for name in MUST_HAVE)
    for key in sorted(by_key):
        ranked = sorted(by_key[key], key=lambda p: (p.stat().st_size, p.name))
        chosen.update(ranked[:PER_KEY])
    return sorted(chosen)


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parents[1]
    root = Path(argv[1]) if len(argv) > 1 else repo.parent / "shared" / "realtraffic"
    target = repo / "tests" / "fixtures" / "recordings"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    chosen = select(root)
    for path in chosen:
        shutil.copyfile(path, target / f"{path.parent.name}__{path.name}")
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"copied {len(chosen)} recordings ({size / 1e6:.1f} MB) to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
