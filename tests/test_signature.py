"""Tool signatures: rejected parameters, descriptions, the hidden context parameter."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

from agentloop._context import RunContext
from agentloop._errors import UsageError
from agentloop._tools import InvalidArguments, tool


def test_var_positional_is_rejected() -> None:
    def f(*args: int) -> None: ...

    with pytest.raises(
        UsageError, match=r"tool function '.*f': parameter '\*args' is not supported"
    ):
        tool(f)


def test_var_keyword_is_rejected() -> None:
    def f(a: int, **kwargs: int) -> None: ...

    with pytest.raises(UsageError, match=r"parameter '\*\*kwargs' is not supported"):
        tool(f)


def test_unannotated_parameter_is_rejected() -> None:
    def f(a: int, b) -> None: ...  # type: ignore[no-untyped-def]

    with pytest.raises(UsageError, match=r"tool function '.*f': parameter 'b' has no annotation"):
        tool(f)


def test_positional_only_is_rejected() -> None:
    def f(a: int, /) -> None: ...

    with pytest.raises(UsageError, match=r"parameter 'a' \(positional-only\) is not supported"):
        tool(f)


class Opaque:
    pass


def test_unsupported_type_names_the_parameter() -> None:
    def f(ok: int, thing: Opaque) -> None: ...

    with pytest.raises(
        UsageError, match=r"tool function '.*f': parameter 'thing' has a type that cannot"
    ):
        tool(f)


def test_unresolvable_annotation() -> None:
    def f(a: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(UsageError, match=r"cannot resolve its annotations \(NameError"):
        tool(f)


def test_two_context_parameters_are_rejected() -> None:
    def f(a: RunContext[Any], b: RunContext[Any]) -> None: ...

    with pytest.raises(UsageError, match="parameters 'a' and 'b' both ask for the RunContext"):
        tool(f)


def test_field_description_wins_over_docstring() -> None:
    @tool
    def f(a: Annotated[int, Field(description="field")], b: int) -> None:
        """Summary.

        Args:
            a: doc a
            b: doc b
        """

    props = f.parameters["properties"]
    assert props["a"]["description"] == "field"
    assert props["b"]["description"] == "doc b"
    assert f.description == "Summary."


def test_no_docstring_gives_an_empty_description() -> None:
    def f(a: int) -> None: ...

    assert tool(f).description == ""


def test_context_parameter_is_hidden_from_the_schema() -> None:
    @tool
    def f(ctx: RunContext[int], q: str) -> str:
        return q

    assert f.context_param == "ctx"
    assert list(f.parameters["properties"]) == ["q"]
    assert list(f.definition(True).parameters["properties"]) == ["q"]
    assert f.parse_arguments('{"q": "x"}') == {"q": "x"}
    with pytest.raises(InvalidArguments, match="ctx: Extra inputs are not permitted"):
        f.parse_arguments('{"q": "x", "ctx": 1}')


def test_bare_run_context_annotation_works() -> None:
    @tool
    def f(q: str, context: RunContext) -> str:  # type: ignore[type-arg]
        return q

    assert f.context_param == "context"
