"""The BFCL accuracy benchmark: Berkeley Function Calling Leaderboard V4 questions, asked through
agentloop, a raw request and pydantic-ai on one server, scored by BFCL's own AST checker.

``python tools/bfcl/run.py`` (``make accuracy``). The modules: `cases` (BFCL's data and the seeded
sample), `convert` (BFCL's functions as OpenAI tools, the way BFCL's OpenAI FC handler makes
them), `clients` (one module per client, each with ``async def answer(case)``), `score` (BFCL's
checker) and `report` (the tables).
"""
