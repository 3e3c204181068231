"""The BFCL accuracy benchmark's own code (tools/bfcl): conversion, data loading and sampling,
scoring's plumbing, the tables, and each client's decoding of a reply, offline.

Neither bfcl-eval nor a model is needed. ``tests/fixtures/bfcl/cases.jsonl`` and
``possible_answers.jsonl`` are eight BFCL V4 entries copied from bfcl-eval 2026.3.23's data
(simple_python 1, 83, 89, 96, 109 and 122, parallel_multiple 1, irrelevance 0: dotted names,
floats, tuples, ``any``, dicts with properties, arrays of dicts and of arrays);
``expected_tools.json`` is what BFCL's own ``convert_to_tool`` (OpenAI completions style, after
its Python hint) made of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentloop import OPENAI_PROFILE
from agentloop.testing import FakeServer, error, reply, tool_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from bfcl.cases import Case, load, sample
from bfcl.clients import Undecodable, split_messages
from bfcl.clients.agentloop_ import AgentloopClient
from bfcl.clients.raw import RawClient, decode_tool_calls
from bfcl.convert import FLOAT_NOTE, PYTHON_HINT, openai_name, to_openai_tools
from bfcl.report import accuracy_table, mistake_kind, mistakes_table
from bfcl.score import MODEL_NAME, Scorer

FIXTURES = Path(__file__).parent / "fixtures" / "bfcl"
ENTRIES = [json.loads(line) for line in (FIXTURES / "cases.jsonl").read_text().splitlines()]
EXPECTED_TOOLS: dict[str, Any] = json.loads((FIXTURES / "expected_tools.json").read_text())
BASE_URL = "http://fake.test/v1"


def _data_dir(tmp_path: Path) -> Path:
    """A bfcl_eval/data layout holding the fixture entries."""
    (tmp_path / "possible_answer").mkdir()
    answers = (FIXTURES / "possible_answers.jsonl").read_text().splitlines()
    for category in ("simple_python", "parallel_multiple", "irrelevance"):
        prefix = f"{category}_"
        mine = [json.dumps(e) for e in ENTRIES if e["id"].removeprefix(prefix).isdigit()]
        (tmp_path / f"BFCL_v4_{category}.json").write_text("\n".join(mine) + "\n")
        picked = [a for a in answers if json.loads(a)["id"].removeprefix(prefix).isdigit()]
        if category != "irrelevance":
            (tmp_path / "possible_answer" / f"BFCL_v4_{category}.json").write_text(
                "\n".join(picked) + "\n"
            )
    return tmp_path


@pytest.fixture
def cases(tmp_path: Path) -> dict[str, Case]:
    directory = _data_dir(tmp_path)
    loaded = [
        case
        for category in ("simple_python", "parallel_multiple", "irrelevance")
        for case in load(category, directory)
    ]
    return {case.id: case for case in loaded}


# -- conversion -------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_conversion_is_bfcls_own(entry: dict[str, Any]) -> None:
    assert to_openai_tools(entry["function"]) == EXPECTED_TOOLS[entry["id"]]
    # key order too: the tools are sent as BFCL sends them
    assert json.dumps(to_openai_tools(entry["function"])) == json.dumps(EXPECTED_TOOLS[entry["id"]])


def test_conversion_leaves_the_dataset_functions_alone() -> None:
    functions = ENTRIES[0]["function"]
    before = json.dumps(functions)
    to_openai_tools(functions)
    assert json.dumps(functions) == before


def test_conversion_rules() -> None:
    function = {
        "name": "geo.area.circle",
        "description": "Area.",
        "parameters": {
            "type": "dict",
            "properties": {
                "radius": {"type": "float", "description": "Radius."},
                "untyped": {"description": "No type."},
                "odd": {"type": "complex", "description": "Unknown type."},
                "points": {"type": "tuple", "items": {"type": "float"}, "description": "P."},
            },
            "required": ["radius"],
        },
    }
    (tool,) = to_openai_tools([function])
    converted = tool["function"]
    assert converted["name"] == "geo_area_circle"
    assert converted["description"] == "Area." + PYTHON_HINT
    properties = converted["parameters"]["properties"]
    assert converted["parameters"]["type"] == "object"
    assert properties["radius"] == {
        "type": "number",
        "description": "Radius." + FLOAT_NOTE,
        "format": "float",
    }
    assert properties["untyped"]["type"] == "string"
    assert properties["odd"]["type"] == "string"
    assert properties["points"] == {
        "type": "array",
        "items": {"type": "number"},
        "description": "P.",
    }


def test_openai_name() -> None:
    assert openai_name("math.factorial") == "math_factorial"
    assert openai_name("a.b_c.d") == "a_b_c_d"
    assert openai_name("plain") == "plain"


# -- data and sampling ------------------------------------------------------------------------


def test_load_reads_questions_functions_and_answers(cases: dict[str, Case]) -> None:
    case = cases["simple_python_1"]
    assert case.category == "simple_python"
    assert case.messages == [
        {"role": "user", "content": "Calculate the factorial of 5 using math functions."}
    ]
    assert case.functions[0]["name"] == "math.factorial"
    assert case.answer == [{"math.factorial": {"number": [5]}}]
    assert cases["irrelevance_0"].answer is None
    assert [c for c in cases if c.startswith("simple_python")] == [
        "simple_python_1",
        "simple_python_83",
        "simple_python_89",
        "simple_python_96",
        "simple_python_109",
        "simple_python_122",
    ]


def test_load_refuses_an_unknown_category(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown category"):
        load("live_simple", tmp_path)


def test_sampling_is_seeded_ordered_and_per_category(cases: dict[str, Case]) -> None:
    simple = [c for c in cases.values() if c.category == "simple_python"]
    first = sample(simple, 3, 7, "simple_python")
    assert [c.id for c in first] == [c.id for c in sample(simple, 3, 7, "simple_python")]
    assert len(first) == 3
    assert [simple.index(c) for c in first] == sorted(simple.index(c) for c in first)
    draws = {tuple(c.id for c in sample(simple, 3, seed, "simple_python")) for seed in range(20)}
    assert len(draws) > 1  # the seed matters
    # the category's name is part of the seed: another category draws other positions
    others = {tuple(simple.index(c) for c in sample(simple, 3, 7, name)) for name in "abcdefgh"}
    assert len(others) > 1
    assert sample(simple, None, 7, "simple_python") == simple
    assert sample(simple, 100, 7, "simple_python") == simple


# -- scoring (the checker itself is BFCL's; here a stand-in records how it is called) ----------


class _Language:
    PYTHON = "python"


def _scorer(valid: bool = True) -> tuple[Scorer, list[tuple[Any, ...]]]:
    seen: list[tuple[Any, ...]] = []

    def checker(*args: Any) -> dict[str, Any]:
        seen.append(args)
        if valid:
            return {"valid": True, "error": []}
        return {"valid": False, "error": ["Wrong number of functions."], "error_type": "x:y"}

    return Scorer((checker, _Language)), seen


def test_scorer_calls_the_checker_as_bfcls_runner_does(cases: dict[str, Case]) -> None:
    scorer, seen = _scorer()
    case = cases["simple_python_1"]
    calls = [{"math_factorial": {"number": 5}}]
    assert scorer.verdict(case, calls).correct
    ((functions, output, answer, language, category, model),) = seen
    assert functions == case.functions  # BFCL's own functions, without the hint
    assert functions[0]["name"] == "math.factorial"
    assert output == calls  # names as the model used them: the checker converts its own
    assert answer == case.answer
    assert (language, category, model) == ("python", "simple_python", MODEL_NAME)


def test_scorer_reports_the_checkers_error(cases: dict[str, Case]) -> None:
    scorer, _ = _scorer(valid=False)
    verdict = scorer.verdict(cases["parallel_multiple_1"], [])
    assert not verdict.correct
    assert verdict.error_type == "x:y"
    assert verdict.errors == ["Wrong number of functions."]


def test_scorer_undecodable_and_irrelevance(cases: dict[str, Case]) -> None:
    scorer, seen = _scorer()
    assert scorer.verdict(cases["simple_python_1"], None).error_type == "ast_decoder:decoder_failed"
    irrelevance = cases["irrelevance_0"]
    assert scorer.verdict(irrelevance, []).correct
    assert scorer.verdict(irrelevance, None).correct  # BFCL: no decodable call = no call
    wrong = scorer.verdict(irrelevance, [{"f": {}}])
    assert (wrong.correct, wrong.error_type) == (False, "irrelevance_error:decoder_success")
    assert seen == []


def test_model_name_has_no_underscore() -> None:
    assert "_" not in MODEL_NAME  # the checker reads "_" in a model's name as "/"


# -- tables -----------------------------------------------------------------------------------


def _result(client: str, category: str, correct: bool, seconds: float, **more: Any) -> dict:
    return {"client": client, "category": category, "correct": correct, "seconds": seconds, **more}


def test_accuracy_table() -> None:
    results = [
        _result("agentloop", "simple_python", True, 1.2),
        _result("agentloop", "simple_python", False, 2.0),
        _result("raw", "simple_python", False, 0.4),
        _result("raw", "simple_python", False, 0.5),
        _result("agentloop", "irrelevance", True, 3.0),
        _result("raw", "irrelevance", True, 0.6),
    ]
    assert accuracy_table(results, ["simple_python", "irrelevance"], ["agentloop", "raw"]) == (
        "| category | agentloop: correct | agentloop: s | raw: correct | raw: s |\n"
        "|---|---|---|---|---|\n"
        "| simple_python | 1/2 | 3 | 0/2 | 1 |\n"
        "| irrelevance | 1/1 | 3 | 1/1 | 1 |\n"
        "| **total** | 2/3 | 6 | 1/3 | 2 |"
    )


def test_mistake_kinds() -> None:
    call = {"f": {"a": 1}}
    base = {"client": "c", "category": "simple_python", "correct": False, "seconds": 1}
    assert mistake_kind({**base, "correct": True}) is None
    assert mistake_kind({**base, "output": []}) == "no call"
    assert mistake_kind({**base, "output": [], "note": "UsageLimitExceeded"}) == (
        "no call (UsageLimitExceeded)"
    )
    assert mistake_kind({**base, "output": None}) == "undecodable arguments"
    assert mistake_kind({**base, "category": "irrelevance", "output": [call]}) == (
        "called a tool in irrelevance"
    )
    many = {**base, "output": [call, call], "expected_calls": 1, "error_type": "s:wrong_count"}
    assert mistake_kind(many) == "too many calls: the same calls again"
    assert mistake_kind({**many, "first_calls_right": True}) == (
        "too many calls: the same calls again, the first ones right"
    )
    other = {"g": {}}
    rounds = {**many, "output": [call, other, call, other, call], "expected_calls": 2}
    assert mistake_kind(rounds) == "too many calls: the same calls again"
    assert mistake_kind({**rounds, "output": [call, other, other]}) == "too many calls"
    few = {**base, "output": [call], "expected_calls": 2, "error_type": "p:wrong_count"}
    assert mistake_kind(few) == "too few calls"
    assert mistake_kind({**base, "output": [call], "error_type": "type_error:simple"}) == (
        "type_error:simple"
    )
    unmatched = {
        **base,
        "output": [call, call],
        "error_type": "parallel_function_checker_no_order:cannot_find_match",
        "errors": ["Could not find...", {"Model Result Index 0": {"sub_error_type": "value"}}],
    }
    assert mistake_kind(unmatched) == "value"


def test_mistakes_table_counts_per_client() -> None:
    base = {"category": "simple_python", "correct": False, "seconds": 1}
    results = [
        {**base, "client": "a", "output": []},
        {**base, "client": "a", "output": []},
        {**base, "client": "b", "output": None},
        {**base, "client": "b", "output": [], "correct": True},
    ]
    assert mistakes_table(results, ["a", "b"]) == (
        "| mistake | a | b |\n|---|---|---|\n| no call | 2 | 0 |\n| undecodable arguments | 0 | 1 |"
    )


# -- clients ----------------------------------------------------------------------------------


def test_split_messages() -> None:
    user = {"role": "user", "content": "hi"}
    assert split_messages([user]) == (None, "hi")
    assert split_messages([{"role": "system", "content": "be brief"}, user]) == ("be brief", "hi")
    with pytest.raises(ValueError, match="single-turn"):
        split_messages([user, {"role": "assistant", "content": "x"}, user])


def test_decode_tool_calls() -> None:
    def call(name: str, arguments: Any) -> dict[str, Any]:
        return {"id": "1", "type": "function", "function": {"name": name, "arguments": arguments}}

    assert decode_tool_calls({"content": "no tools"}) == []
    assert decode_tool_calls({"tool_calls": None}) == []
    assert decode_tool_calls(
        {"tool_calls": [call("a_b", '{"x": 1}'), call("c", '{"y": "5"}')]}
    ) == [{"a_b": {"x": 1}}, {"c": {"y": "5"}}]
    with pytest.raises(Undecodable):
        decode_tool_calls({"tool_calls": [call("a", '{"x": ')]})
    with pytest.raises(Undecodable):
        decode_tool_calls({"tool_calls": [call("a", "[1, 2]")]})
    with pytest.raises(Undecodable):
        decode_tool_calls({"tool_calls": [call("a", {"x": 1})]})  # not a JSON string


@pytest.mark.anyio
async def test_raw_client_sends_one_plain_request(cases: dict[str, Case]) -> None:
    case = cases["simple_python_1"]
    with FakeServer([tool_call(("math_factorial", {"number": 5}))]) as server:
        client = RawClient(BASE_URL, "m", http_client=httpx.AsyncClient(transport=server.transport))
        assert await client.answer(case) == [{"math_factorial": {"number": 5}}]
        await client.aclose()
    (body,) = server.requests
    assert body == {
        "model": "m",
        "messages": case.messages,
        "tools": EXPECTED_TOOLS["simple_python_1"],
        "tool_choice": "auto",
    }
    assert client.note is None


@pytest.mark.anyio
async def test_raw_client_undecodable_and_errors(cases: dict[str, Case]) -> None:
    case = cases["simple_python_1"]
    script = [tool_call(("math_factorial", '{"number": 5')), error(500)]
    with FakeServer(script) as server:
        client = RawClient(BASE_URL, "m", http_client=httpx.AsyncClient(transport=server.transport))
        with pytest.raises(Undecodable):
            await client.answer(case)
        assert await client.answer(case) == []
        assert client.note == "HTTPStatusError"
        await client.aclose()


def agentloop_client(server: FakeServer) -> AgentloopClient:
    http_client = httpx.AsyncClient(transport=server.transport)
    return AgentloopClient(BASE_URL, "m", http_client=http_client, profile=OPENAI_PROFILE)


@pytest.mark.anyio
async def test_agentloop_client_records_validated_calls(cases: dict[str, Case]) -> None:
    case = cases["parallel_multiple_1"]
    names = [f["function"]["name"] for f in to_openai_tools(case.functions)]
    assert names[1:] == ["area_rectangle_calculate", "area_circle_calculate"]
    script = [
        tool_call((names[1], {"length": "7", "breadth": 3}), (names[2], {"radius": 5})),
        reply("The areas are 21 and 78.5."),
    ]
    with FakeServer(script) as server:
        client = agentloop_client(server)
        calls = await client.answer(case)
    # validated: "7" for a number was read as 7 before the tool got it
    assert sorted(calls, key=str) == sorted(
        [{names[1]: {"length": 7, "breadth": 3}}, {names[2]: {"radius": 5}}], key=str
    )
    assert client.note is None
    first = server.requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == names
    assert first["messages"][-1] == case.messages[-1]
    assert server.requests[1]["messages"][-1]["content"] == "Done."


@pytest.mark.anyio
async def test_agentloop_client_ends_a_case_on_its_limit(cases: dict[str, Case]) -> None:
    case = cases["simple_python_1"]
    script = [tool_call(("math_factorial", {"number": n})) for n in (5, 6, 7)]
    with FakeServer(script) as server:
        client = agentloop_client(server)
        calls = await client.answer(case)
    assert calls == [{"math_factorial": {"number": n}} for n in (5, 6, 7)]
    assert client.note == "UsageLimitExceeded"


@pytest.mark.anyio
async def test_agentloop_client_records_a_repeated_call_once(cases: dict[str, Case]) -> None:
    case = cases["simple_python_1"]
    again = tool_call(("math_factorial", {"number": 5}))
    with FakeServer([again, again, reply("120")]) as server:
        client = agentloop_client(server)
        calls = await client.answer(case)
        asked = [request.get("tool_choice") for request in server.requests]
    assert calls == [{"math_factorial": {"number": 5}}]
    assert client.note is None
    assert asked == ["auto", "auto", "none"]  # after the repeat, the answer is asked for


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # pydantic-ai runs on asyncio
@pytest.mark.filterwarnings("ignore:`httpx.AsyncClient` support")
async def test_pydantic_ai_client_records_calls(cases: dict[str, Case]) -> None:
    pytest.importorskip("pydantic_ai")
    from bfcl.clients.pydantic_ai_ import PydanticAIClient

    case = cases["simple_python_1"]
    script = [tool_call(("math_factorial", {"number": 5})), reply("120")]
    with FakeServer(script) as server:
        client = PydanticAIClient(
            BASE_URL, "m", http_client=httpx.AsyncClient(transport=server.transport)
        )
        assert await client.answer(case) == [{"math_factorial": {"number": 5}}]
        assert client.note is None
    first = server.requests[0]
    assert first["tools"][0]["function"]["name"] == "math_factorial"
    assert first["messages"] == case.messages


def test_run_options_take_a_chat_template_only_for_a_local_llama_server() -> None:
    from bfcl.run import CHATML_TOOLS, parse_args

    assert parse_args(["--chat-template", str(CHATML_TOOLS)]).chat_template == CHATML_TOOLS
    for argv in (
        ["--chat-template", "t.jinja", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"],
        ["--chat-template", "t.jinja", "--backend", "llama-cpp-python"],
    ):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_the_chatml_tools_template_renders_tools_calls_and_results() -> None:
    jinja2 = pytest.importorskip("jinja2")
    from bfcl.run import CHATML_TOOLS

    template = jinja2.Environment().from_string(CHATML_TOOLS.read_text())
    tools = to_openai_tools([ENTRIES[0]["function"][0]])
    name = tools[0]["function"]["name"]
    call = {"type": "function", "function": {"name": name, "arguments": {"number": 5}}}
    messages = [
        {"role": "user", "content": "5!?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "120"},
    ]
    text = template.render(messages=messages, tools=tools, add_generation_prompt=True)
    system, user, assistant, result, prompt = text.split("<|im_start|>")[1:]
    assert system.startswith("system\n") and json.dumps(tools[0], sort_keys=True) in system
    assert user == "user\n5!?<|im_end|>\n"
    called = json.loads(assistant.split("<tool_call>")[1].split("</tool_call>")[0])
    assert called == {"name": name, "arguments": {"number": 5}}
    assert "<tool_response>\n120\n</tool_response>" in result
    assert prompt == "assistant\n"
    plain = template.render(messages=messages[:1], add_generation_prompt=False)
    assert plain == "<|im_start|>user\n5!?<|im_end|>\n"
