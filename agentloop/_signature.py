"""From a Python function's signature and docstring to a pydantic model of its arguments.

Each parameter becomes a field of a model built with `pydantic.create_model`; the field is named
``p0``, ``p1``... and aliased to the parameter's name, so that any name (``schema``, ``_x``,
``model_config``) works. Descriptions come from ``Field(description=...)`` first, then from the
docstring (Google, NumPy or Sphinx style). A parameter annotated `RunContext` is left out: the
loop injects it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from ._context import RunContext
from ._errors import UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["Signature", "function_name", "inspect_function", "is_async_callable", "is_context"]


@dataclass(frozen=True, slots=True)
class Signature:
    """What a tool needs from its function.

    `fields` maps each model field name to the parameter name it fills.
    """

    model: type[BaseModel]
    fields: dict[str, str]
    context_param: str | None
    description: str
    schema: dict[str, Any]


def function_name(func: Callable[..., Any]) -> str:
    """A readable name for `func` in error messages."""
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether calling `func` gives a coroutine (functions, partials, objects with async call)."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - we need the method itself
    return call is not None and inspect.iscoroutinefunction(call)


def is_context(annotation: Any) -> bool:
    """Whether `annotation` is `RunContext` or ``RunContext[X]`` (possibly ``Annotated``)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is RunContext or typing.get_origin(annotation) is RunContext


def type_hints(
    func: Callable[..., Any], localns: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved annotations of `func` (with ``Annotated`` kept).

    `localns` is the namespace the function was defined in, so that string annotations naming
    local classes resolve too.
    """
    target: Any = func
    if not (inspect.isfunction(func) or inspect.ismethod(func)):
        target = getattr(func, "func", None) or getattr(func, "__call__", func)  # noqa: B004
    try:
        return typing.get_type_hints(target, None, dict(localns or {}), include_extras=True)
    except Exception as exc:
        raise UsageError(
            f"tool function {function_name(func)!r}: cannot resolve its annotations "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def inspect_function(
    func: Callable[..., Any], localns: Mapping[str, Any] | None = None
) -> Signature:
    """Build the argument model of `func`; raise `UsageError` for what a tool cannot take."""
    name = function_name(func)
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError) as exc:
        raise UsageError(f"tool function {name!r}: cannot read its signature: {exc}") from exc
    hints = type_hints(func, localns)
    summary, docs = _docstring(func)
    context_param: str | None = None
    specs: dict[str, tuple[Any, Any, str | None]] = {}
    for param in parameters.values():
        _check_kind(name, param)
        if param.name not in hints:
            raise UsageError(f"tool function {name!r}: parameter {param.name!r} has no annotation")
        annotation = hints[param.name]
        if is_context(annotation):
            if context_param is not None:
                raise UsageError(
                    f"tool function {name!r}: parameters {context_param!r} and {param.name!r} "
                    "both ask for the RunContext; one is enough"
                )
            context_param = param.name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        specs[param.name] = (annotation, default, docs.get(param.name))
    model, fields = _build_model(name, specs)
    schema = _json_schema(name, model, specs)
    return Signature(model, fields, context_param, summary, schema)


def _check_kind(name: str, param: inspect.Parameter) -> None:
    kind = param.kind
    if kind is inspect.Parameter.VAR_POSITIONAL:
        what = f"'*{param.name}'"
    elif kind is inspect.Parameter.VAR_KEYWORD:
        what = f"'**{param.name}'"
    elif kind is inspect.Parameter.POSITIONAL_ONLY:
        what = f"{param.name!r} (positional-only)"
    else:
        return
    raise UsageError(
        f"tool function {name!r}: parameter {what} is not supported; tools take named "
        "parameters with annotations"
    )


def _docstring(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The description (summary and long text) and the per-parameter descriptions."""
    doc = inspect.getdoc(func) or ""
    if not doc.strip():
        return "", {}
    import docstring_parser

    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return doc.strip(), {}
    parts = [p.strip() for p in (parsed.short_description, parsed.long_description) if p]
    params = {p.arg_name: " ".join(p.description.split()) for p in parsed.params if p.description}
    return "\n\n".join(parts), params


def _build_model(
    name: str, specs: dict[str, tuple[Any, Any, str | None]]
) -> tuple[type[BaseModel], dict[str, str]]:
    from pydantic import ConfigDict, Field, create_model
    from pydantic.fields import FieldInfo

    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    for index, (param, (annotation, default, doc)) in enumerate(specs.items()):
        given = FieldInfo.from_annotated_attribute(annotation, default)
        extra: dict[str, Any] = {}
        if given.alias is None:
            extra["alias"] = param
        if given.description is None and doc:
            extra["description"] = doc
        annotated = Annotated[annotation, Field(**extra)] if extra else annotation
        fields[f"p{index}"] = (annotated, default)
        names[f"p{index}"] = param
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    model_name = name.replace(".", "_").replace("<", "").replace(">", "") + "_arguments"
    try:
        model = create_model(model_name, __config__=config, **fields)
    except Exception as exc:
        raise _culprit(name, specs, exc) from exc
    return model, names


def _json_schema(
    name: str, model: type[BaseModel], specs: dict[str, tuple[Any, Any, str | None]]
) -> dict[str, Any]:
    try:
        return model.model_json_schema()
    except Exception as exc:
        raise _culprit(name, specs, exc) from exc


def _culprit(
    name: str, specs: dict[str, tuple[Any, Any, str | None]], exc: Exception
) -> UsageError:
    """A `UsageError` naming the first parameter whose type pydantic cannot handle."""
    from pydantic import TypeAdapter

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for param, (annotation, _, _) in specs.items():
        try:
            TypeAdapter(annotation).json_schema()
        except Exception:
            return UsageError(
                f"tool function {name!r}: parameter {param!r} has a type that cannot be "
                f"validated or described as JSON schema ({annotation!r}): {reason}"
            )
    return UsageError(f"tool function {name!r}: cannot build its argument model: {reason}")
