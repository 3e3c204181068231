"""`@tool` and `Tool`: options, strict decisions, context, calls."""

from __future__ import annotations

import dataclasses
import functools
import threading
import typing
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from agentloop._context import RunContext
from agentloop._errors import SchemaError, ToolRetry, UsageError
from agentloop._messages import ToolDefinition
from agentloop._tools import InvalidArguments, Tool, ToolChanges, ToolOptions, tool
from agentloop._usage import Usage


def make_ctx(deps: Any = None) -> RunContext[Any]:
    return RunContext(deps=deps, usage=Usage(), messages=[])


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


def test_bare_decorator_builds_a_tool_once() -> None:
    made = tool(add)
    assert isinstance(made, Tool)
    assert made.name == "add"
    assert made.description == "Add two numbers."
    assert made.function is add
    assert made.function(1, 2) == 3
    assert made.parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 2}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert (
        made.strict,
        made.timeout,
        made.sequential,
        made.requires_approval,
        made.max_retries,
    ) == (
        None,
        None,
        False,
        False,
        2,
    )
    assert not made.is_async


def test_decorator_with_options() -> None:
    @tool(
        name="adder",
        description="Adds.",
        strict=False,
        timeout=1.5,
        sequential=True,
        requires_approval=True,
        max_retries=5,
    )
    async def add_async(a: int) -> int:
        return a

    assert (add_async.name, add_async.description, add_async.strict) == ("adder", "Adds.", False)
    assert (add_async.timeout, add_async.sequential, add_async.requires_approval) == (
        1.5,
        True,
        True,
    )
    assert add_async.max_retries == 5
    assert add_async.is_async


def test_tool_is_frozen_and_replace_reruns_checks() -> None:
    made = tool(add)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "x"  # type: ignore[misc]
    renamed = made.replace(name="plus")
    assert renamed.name == "plus"
    assert made.name == "add"
    assert renamed.definition().name == "plus"
    with pytest.raises(UsageError, match="tool name 'bad name' is not valid"):
        made.replace(name="bad name")


# A value other than the default for each option; a new option needs one here.
OPTION_SAMPLES: dict[str, Any] = {
    "strict": False,
    "timeout": 1.5,
    "sequential": True,
    "requires_approval": True,
    "max_retries": 5,
    "rerun": True,
}


ADD_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_tool_fields_mirror_the_options() -> None:
    options = typing.get_type_hints(ToolOptions)
    fields = typing.get_type_hints(Tool)
    assert options.keys() == OPTION_SAMPLES.keys()
    assert {name: fields[name] for name in options} == options
    init_fields = {f.name for f in dataclasses.fields(Tool) if f.init}
    assert init_fields == ToolChanges.__optional_keys__


@pytest.mark.parametrize("option", sorted(OPTION_SAMPLES))
def test_every_option_round_trips_through_every_form(option: str) -> None:
    value = OPTION_SAMPLES[option]
    given = {option: value}
    made = {
        "tool": tool(**given)(add),
        "from_schema": Tool.from_schema("add", "", ADD_SCHEMA, add, **given),
        "replace": tool(add).replace(**given),
    }
    assert {form: getattr(t, option) for form, t in made.items()} == dict.fromkeys(made, value)
    assert getattr(tool(add), option) != value


def test_unknown_options_are_refused_by_every_form() -> None:
    with pytest.raises(TypeError, match=r"tool\(\) got an unexpected keyword argument 'timout'"):
        tool(timout=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'function'"):
        tool(function=add)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'context_param'"):
        Tool.from_schema("add", "", ADD_SCHEMA, add, context_param="a")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'timout'"):
        tool(add).replace(timout=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dots.not.allowed", "ünï"])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(UsageError, match="is not valid: use 1 to 64 letters"):
        tool(name=name)(add)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(UsageError, match=r"name '<lambda>' is not valid"):
        tool(lambda: 1)
    assert tool(name="one")(lambda: 1).name == "one"


def test_local_classes_in_string_annotations_resolve() -> None:
    @dataclasses.dataclass
    class Local:
        n: int

    @tool
    def f(item: Local) -> int:
        return item.n

    @tool(name="g")
    def g(item: Local) -> int:
        return item.n

    assert f.parse_arguments('{"item": {"n": 1}}') == {"item": Local(1)}
    assert g.parse_arguments('{"item": {"n": 2}}') == {"item": Local(2)}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number of seconds"),
        ({"timeout": -1.0}, "timeout must be a positive number of seconds"),
        ({"max_retries": -1}, "max_retries must be 0 or more"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        tool(**options)(add)


def test_explicit_description_replaces_the_docstring() -> None:
    assert tool(description="Mine.")(add).description == "Mine."


@pytest.mark.anyio
async def test_call_injects_the_context() -> None:
    seen: list[Any] = []

    @tool
    async def f(ctx: RunContext[str], q: str) -> str:
        seen.append(ctx)
        return f"{ctx.deps}:{q}"

    ctx = make_ctx("deps")
    assert await f.call(f.parse_arguments('{"q": "x"}'), ctx) == "deps:x"
    assert seen == [ctx]


@pytest.mark.anyio
async def test_sync_tools_run_in_a_worker_thread() -> None:
    @tool
    def where(ctx: RunContext[None]) -> int:
        assert ctx.deps is None
        return threading.get_ident()

    assert await where.call({}, make_ctx()) != threading.get_ident()


@pytest.mark.anyio
async def test_async_tools_run_on_the_loop_thread() -> None:
    @tool
    async def where() -> int:
        await anyio.lowlevel.checkpoint()
        return threading.get_ident()

    assert await where.call({}, make_ctx()) == threading.get_ident()


@pytest.mark.anyio
async def test_sync_tool_does_not_block_the_loop() -> None:
    release = threading.Event()
    order: list[str] = []

    @tool
    def blocking() -> str:
        release.wait(5)
        order.append("tool")
        return "done"

    async def other() -> None:
        await anyio.sleep(0.01)
        order.append("loop")
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        assert await blocking.call({}, make_ctx()) == "done"
    assert order == ["loop", "tool"]


@pytest.mark.anyio
async def test_partial_and_callable_objects() -> None:
    async def scaled(x: int, factor: int) -> int:
        return x * factor

    made = tool(name="triple")(functools.partial(scaled, factor=3))
    assert made.is_async
    assert list(made.parameters["properties"]) == ["x", "factor"]
    assert await made.call(made.parse_arguments('{"x": 2}'), make_ctx()) == 6

    class Greeter:
        async def __call__(self, who: str) -> str:
            return f"hi {who}"

    greeter = tool(name="greet")(Greeter())
    assert greeter.is_async
    assert await greeter.call({"who": "bo"}, make_ctx()) == "hi bo"


@pytest.mark.anyio
async def test_tool_errors_and_retry_signals_propagate() -> None:
    @tool
    def boom(kind: str) -> None:
        if kind == "retry":
            raise ToolRetry("try again")
        raise RuntimeError("broken")

    with pytest.raises(ToolRetry, match="try again"):
        await boom.call({"kind": "retry"}, make_ctx())
    with pytest.raises(RuntimeError, match="broken"):
        await boom.call({"kind": "x"}, make_ctx())


def test_definition_is_cached_per_resolved_value() -> None:
    made = tool(add)
    first = made.definition(None)
    assert made.definition(None) is first
    assert isinstance(first, ToolDefinition)
    assert first.strict is True
    assert made.definition(False).parameters is made.parameters
    assert made.definition(False).strict is False


def test_auto_strict_is_logged_with_the_reason() -> None:
    @tool
    def free(data: dict[str, int]) -> None: ...

    with capture_logs() as logs:
        loose = free.definition()
        tool(add).definition()
    assert loose.strict is False
    assert logs == [
        {
            "event": "tool_strict_mode",
            "log_level": "debug",
            "tool": "free",
            "strict": False,
            "reason": "/properties/data: free-form object (additionalProperties) is not supported",
        },
        {
            "event": "tool_strict_mode",
            "log_level": "debug",
            "tool": "add",
            "strict": True,
            "reason": "the schema can be strict",
        },
    ]


def test_strict_true_on_a_lossy_schema_fails_at_decoration() -> None:
    def free(data: dict[str, int]) -> None: ...

    with pytest.raises(
        UsageError, match=r"tool 'free' cannot be strict: /properties/data: free-form"
    ):
        tool(strict=True)(free)


def test_tool_strict_wins_over_the_agent_default() -> None:
    loose = tool(strict=False)(add)
    assert loose.definition(True).strict is False
    strict = tool(strict=True)(add)
    assert strict.definition(False).strict is True
    assert strict.definition(False).parameters["required"] == ["a", "b"]


def test_agent_strict_true_on_a_lossy_tool_raises() -> None:
    @tool
    def free(data: dict[str, int]) -> None: ...

    with pytest.raises(UsageError, match="tool 'free' cannot be strict"):
        free.definition(True)
    assert free.definition(False).strict is False


def test_schema_beyond_limits_goes_non_strict_automatically() -> None:
    schema = {
        "type": "object",
        "properties": {"choice": {"enum": [f"v{i}" for i in range(1001)]}},
        "required": ["choice"],
    }
    made = Tool.from_schema("pick", "Pick one.", schema, lambda choice: choice)
    with capture_logs() as logs:
        assert made.definition().strict is False
    assert "1,001 enum values" in logs[0]["reason"]
    with pytest.raises(UsageError, match="cannot be strict: the schema has 1,001 enum values"):
        Tool.from_schema("pick", "Pick one.", schema, lambda choice: choice, strict=True)


WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "title": "City", "description": "The city."},
        "days": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "unit": {"enum": ["c", "f"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.anyio
async def test_from_schema_validates_and_calls_with_keywords() -> None:
    calls: list[dict[str, Any]] = []

    def weather(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "sunny"

    made = Tool.from_schema("weather", "Get the weather.", WEATHER, weather)
    assert made.parameters["properties"]["city"] == {"type": "string", "description": "The city."}
    arguments = made.parse_arguments('{"city": "Oslo", "days": null, "unit": "c"}')
    assert arguments == {"city": "Oslo", "unit": "c"}
    assert await made.call(arguments, make_ctx()) == "sunny"
    assert calls == [{"city": "Oslo", "unit": "c"}]
    assert made.definition().strict is True


def test_from_schema_invalid_arguments() -> None:
    made = Tool.from_schema("weather", "", WEATHER, lambda **kw: kw)
    with pytest.raises(InvalidArguments) as info:
        made.parse_arguments('{"days": "x", "unit": "k", "extra": 1}')
    assert info.value.message == (
        "Invalid arguments for tool 'weather': city: Field required; "
        "extra: Extra inputs are not permitted (got 1); "
        "days: Input should be of type integer (got 'x'); "
        "unit: Input should be one of 'c', 'f' (got 'k')"
    )
    with pytest.raises(InvalidArguments, match=r"days: 11 is greater than the maximum of 10"):
        made.parse_arguments('{"city": "a", "days": 11}')


@pytest.mark.anyio
async def test_from_schema_async_function_with_context() -> None:
    async def run(ctx: RunContext[int], n: int) -> int:
        return ctx.deps + n

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    made = Tool.from_schema("run", "", schema, run)
    assert made.is_async
    assert made.context_param == "ctx"
    assert await made.call(made.parse_arguments('{"n": 2}'), make_ctx(40)) == 42


def test_from_schema_rejects_invalid_schemas() -> None:
    with pytest.raises(
        SchemaError,
        match=r"tool 'x': invalid JSON schema at properties/a/type: 'strnig' is not valid",
    ):
        Tool.from_schema(
            "x", "", {"type": "object", "properties": {"a": {"type": "strnig"}}}, print
        )
    with pytest.raises(SchemaError, match="the parameters schema must have type 'object'"):
        Tool.from_schema("x", "", {"type": "array"}, print)
    with pytest.raises(UsageError, match="tool name 'a b' is not valid"):
        Tool.from_schema("a b", "", {"type": "object"}, print)


def test_from_schema_without_properties_takes_no_arguments() -> None:
    made = Tool.from_schema("ping", "Ping.", {"type": "object"}, lambda: "pong")
    assert made.parse_arguments(None) == {}
    assert made.definition().strict is True
    assert made.definition().parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
