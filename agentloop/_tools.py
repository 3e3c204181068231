"""Tools: Python functions (or raw JSON schemas) the model may call, with trustworthy arguments.

`@tool` turns a sync or async function into a `Tool` once, at decoration: its JSON schema, its
argument validator (pydantic, from the signature) and its description (from the docstring) are
built then, never per request. `Tool.from_schema` does the same for a raw JSON schema (MCP,
OpenAPI), validated with `jsonschema`.

For the loop: `parse_arguments` turns the model's raw JSON text into validated Python values or
raises `InvalidArguments` (a `ToolRetry`: the message goes back to the model); `call` runs the
function, sync functions in a worker thread; `definition` gives what the model is told, strict
when asked or, automatically, when the schema can be strict without losing meaning.

The options every form takes (`@tool(...)`, `Tool.from_schema(...)`, `Tool.replace(...)`) are
declared once, in `ToolOptions`; `Tool`'s fields hold them (pyright checks ``Tool(**options)``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack, overload

from ._errors import SchemaError, ToolRetry, UsageError
from ._log import get_logger
from ._messages import ToolDefinition
from ._strict_result import StrictResult

# The schema, signature and argument modules load with the first tool built, not with
# `import agentloop` (a script may import the package and build its tools much later, or never).
if TYPE_CHECKING:
    from ._context import RunContext

__all__ = ["InvalidArguments", "Tool", "ToolChanges", "ToolOptions", "tool"]

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_IN_NAMES = re.compile(r"[^a-zA-Z0-9_-]")


def api_tool_name(text: str) -> str:
    """`text` as a valid tool name: what the API does not take replaced by ``_``, at most 64
    characters (names that come from elsewhere: an MCP server's, a handoff's agent's)."""
    return _NOT_IN_NAMES.sub("_", text)[:64] or "_"


_log = get_logger()


class InvalidArguments(ToolRetry):
    """The model's arguments for a tool were not acceptable; the message says what to fix."""

    def __init__(self, message: str, *, tool_name: str, problems: list[str]) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.problems = problems


class ArgumentsValidator(Protocol):
    """Turns a JSON object of arguments into keyword arguments, or raises `ArgumentProblems`."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]: ...


class ToolOptions(TypedDict, total=False):
    """How a tool behaves in the loop: the options of `@tool(...)`, `from_schema` and `replace`.

    The one declaration of the options: a new option is a key here plus a `Tool` field of the
    same name and type holding its default (pyright and the tests check the two agree).
    """

    strict: bool | None
    """Strict schema: True or False, or None to decide from the schema (see `Tool.definition`)."""
    timeout: float | None
    """Seconds a call may run; past them the model is told it timed out. None: no limit."""
    sequential: bool
    """Run alone and in order, never alongside other calls of the same turn."""
    requires_approval: bool
    """Run only if the agent's approver says yes."""
    max_retries: int
    """How many `ToolRetry` (invalid arguments too) go back to the model before the run fails."""
    rerun: bool
    """Run again when called again with the same arguments in one run (a clock, a random draw,
    a status to poll). By default such a repeat gets the earlier call's result and does not run."""


class ToolChanges(ToolOptions, total=False):
    """What `Tool.replace` may change: the options plus the tool's own parts."""

    function: Callable[..., Any]
    name: str
    description: str
    parameters: Mapping[str, Any]
    validator: ArgumentsValidator
    context_param: str | None


_OPTION_NAMES = frozenset(ToolOptions.__optional_keys__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A function the model may call. Build one with `@tool` or `Tool.from_schema`.

    `parameters` is the (non-strict) JSON schema of the arguments; `function` the function
    itself, for direct calls; `context_param` the parameter that receives the `RunContext`.
    `strict` None means automatic (see `definition`). `timeout` (seconds) is applied by the loop.
    """

    function: Callable[..., Any]
    name: str
    description: str
    parameters: Mapping[str, Any]
    validator: ArgumentsValidator = field(repr=False, compare=False)
    context_param: str | None = None
    # The `ToolOptions`, with their defaults:
    strict: bool | None = None
    timeout: float | None = None
    sequential: bool = False
    requires_approval: bool = False
    max_retries: int = 2
    rerun: bool = False
    is_async: bool = field(init=False, repr=False, compare=False)
    _strict: StrictResult | SchemaError = field(init=False, repr=False, compare=False)
    _definitions: dict[bool | None, ToolDefinition] = field(
        init=False, repr=False, compare=False, default_factory=lambda: {}
    )

    def __post_init__(self) -> None:
        from ._schema import to_strict  # deferred: see the imports
        from ._signature import is_async_callable

        _check_options(self)
        object.__setattr__(self, "is_async", is_async_callable(self.function))
        try:
            strict: StrictResult | SchemaError = to_strict(self.parameters)
        except SchemaError as exc:
            strict = exc
        object.__setattr__(self, "_strict", strict)
        if self.strict is True:
            self._strict_schema()

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        function: Callable[..., Any],
        **options: Unpack[ToolOptions],
    ) -> Tool:
        """A tool from a raw JSON schema; `function` gets the arguments as keyword arguments."""
        from ._arguments import JsonSchemaArguments  # deferred: see the imports
        from ._schema_walk import clean_schema

        _check_option_names("Tool.from_schema", options)
        schema = dict(parameters)
        _check_json_schema(name, schema)
        return cls(
            function=function,
            name=name,
            description=description,
            parameters=clean_schema(schema),
            validator=JsonSchemaArguments(schema),
            context_param=_context_param(function),
            **options,
        )

    def definition(self, strict: bool | None = None) -> ToolDefinition:
        """What the model is told. `strict` is the agent's default; the tool's own wins."""
        wanted = self.strict if self.strict is not None else strict
        cached = self._definitions.get(wanted)
        if cached is not None:
            return cached
        if wanted is None:
            problem = self._strict_problem()
            use_strict, reason = problem is None, problem or "the schema can be strict"
        else:
            use_strict, reason = wanted, "asked for"
        _log.debug("tool_strict_mode", tool=self.name, strict=use_strict, reason=reason)
        parameters = self._strict_schema() if use_strict else self.parameters
        made = ToolDefinition(self.name, self.description, parameters, use_strict)
        self._definitions[wanted] = made
        return made

    def parse_arguments(self, raw: str | None) -> dict[str, Any]:
        """The validated keyword arguments (the context excluded), or `InvalidArguments`."""
        from ._arguments import ArgumentProblems, load_arguments  # deferred: see the imports

        try:
            return self.validator.validate(load_arguments(raw))
        except ArgumentProblems as exc:
            message = f"Invalid arguments for tool {self.name!r}: {exc}"
            raise InvalidArguments(message, tool_name=self.name, problems=exc.lines) from None

    async def call(self, arguments: dict[str, Any], ctx: RunContext[Any]) -> Any:
        """Run the function with validated `arguments`; sync functions run in a worker thread."""
        kwargs = dict(arguments)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if self.is_async:
            return await self.function(**kwargs)
        import anyio.to_thread

        bound = functools.partial(self.function, **kwargs)
        value = await anyio.to_thread.run_sync(bound, abandon_on_cancel=True)
        if inspect.isawaitable(value):
            value = await value
        return value

    def replace(self, **changes: Unpack[ToolChanges]) -> Tool:
        """A copy with `changes` (for example ``strict=False``); checks run again."""
        return dataclasses.replace(self, **changes)

    def _strict_problem(self) -> str | None:
        if isinstance(self._strict, SchemaError):
            return self._strict.message
        return "; ".join(self._strict.problems) or None

    def _strict_schema(self) -> Mapping[str, Any]:
        problem = self._strict_problem()
        if problem is not None or isinstance(self._strict, SchemaError):
            raise UsageError(f"tool {self.name!r} cannot be strict: {problem}")
        return self._strict.schema


def _check_option_names(where: str, options: Mapping[str, object]) -> None:
    """Refuse unknown keywords now, as a plain signature would (not later, at decoration)."""
    unknown = sorted(options.keys() - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")


def _check_options(made: Tool) -> None:
    if not _NAME_RE.match(made.name):
        raise UsageError(
            f"tool name {made.name!r} is not valid: use 1 to 64 letters, digits, '_' or '-'"
        )
    if made.timeout is not None and not made.timeout > 0:
        raise UsageError(f"tool {made.name!r}: timeout must be a positive number of seconds")
    if made.max_retries < 0:
        raise UsageError(f"tool {made.name!r}: max_retries must be 0 or more")


def _check_json_schema(name: str, schema: dict[str, Any]) -> None:
    from jsonschema.exceptions import SchemaError as JsonSchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except JsonSchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise SchemaError(f"tool {name!r}: invalid JSON schema at {where}: {exc.message}") from None
    if schema.get("type") != "object":
        raise SchemaError(f"tool {name!r}: the parameters schema must have type 'object'")


def _context_param(function: Callable[..., Any]) -> str | None:
    """The parameter of a raw-schema tool's function annotated `RunContext`, if any."""
    from ._signature import is_context, type_hints  # deferred: see the imports

    try:
        hints = type_hints(function)
    except UsageError:
        return None
    return next((name for name, hint in hints.items() if is_context(hint)), None)


def _from_function(
    function: Callable[..., Any],
    name: str | None,
    description: str | None,
    options: ToolOptions,
    localns: Mapping[str, Any] | None,
) -> Tool:
    from ._arguments import PydanticArguments  # deferred: see the imports
    from ._schema_walk import clean_schema
    from ._signature import function_name, inspect_function

    tool_name = name if name is not None else getattr(function, "__name__", "")
    if not tool_name or not _NAME_RE.match(tool_name):
        raise UsageError(
            f"tool function {function_name(function)!r}: name {tool_name!r} is not valid: "
            "use 1 to 64 letters, digits, '_' or '-' (or pass name=...)"
        )
    signature = inspect_function(function, localns)
    return Tool(
        function=function,
        name=tool_name,
        description=description if description is not None else signature.description,
        parameters=clean_schema(signature.schema),
        validator=PydanticArguments(signature.model, signature.fields, signature.schema),
        context_param=signature.context_param,
        **options,
    )


def _caller_locals() -> dict[str, Any]:
    """The local names of the scope that applied the decorator (two frames up)."""
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame and frame.f_back else None
    return dict(caller.f_locals) if caller is not None else {}


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    **options: Unpack[ToolOptions],
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    **options: Unpack[ToolOptions],
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a `Tool` of a sync or async function; use bare (``@tool``) or with options.

    `name` defaults to the function's name, `description` to its docstring's summary; the
    other options are `ToolOptions`.
    """
    _check_option_names("tool", options)
    if function is not None:
        return _from_function(function, name, description, options, _caller_locals())

    def decorate(fn: Callable[..., Any]) -> Tool:
        return _from_function(fn, name, description, options, _caller_locals())

    return decorate
