"""Agents the scale tests build where they run (Ray actors, DBOS workers): importable factories."""

from __future__ import annotations

from pydantic import BaseModel

from agentloop import OPENAI_PROFILE, Agent, OpenAICompatible


class Extracted(BaseModel):
    id: str
    words: int


def fake_model(base_url: str) -> OpenAICompatible:
    return OpenAICompatible(
        "fake-model", base_url=base_url, api_key="sk-local-fake", profile=OPENAI_PROFILE
    )


def extraction_agent(base_url: str) -> Agent[Extracted]:
    """One request per document: the fake server answers with the JSON output at once."""
    return Agent(fake_model(base_url), instructions="Extract the document.", output_type=Extracted)


def prompt_of(row: dict[str, object]) -> str:
    return f"id={row['id']} {row['text']}"
