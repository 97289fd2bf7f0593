"""The condition language Argo Rollouts uses (expr-lang subset): parsing, Go-like semantics and errors."""

from __future__ import annotations

import math

import pytest

from funade.core import expr
from funade.core.expr import ExprError

pytestmark = pytest.mark.unit


def ev(source: str, **env: object) -> object:
    return expr.evaluate(source, env)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("2 ** 3 ** 2", 512.0),
        ("2 ^ 10", 1024.0),
        ("-2 ** 2", -4.0),
        ("1 < 2 and 2 < 3", True),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not true == false", True),
        ("!false && true", True),
        ("'abc' < 'abd'", True),
        ("\"a\" + 'b' == 'ab'", True),
        ("1 == 1.0", True),
        ("1 == '1'", False),
        ("nil == nil", True),
        ("2 in [1, 2, 3]", True),
        ("4 not in [1, 2, 3]", True),
        ("'x' in ['y']", False),
        ("1 > 2 ? 'a' : 'b'", "b"),
        ("nil ?? 5", 5),
        ("'hello' startsWith 'he'", True),
        ("'hello' contains 'ell'", True),
        ("'v1.2' matches '^v[0-9]'", True),
        ("1_000 + 0.5e1", 1005.0),
        ("len([])", 0),
        ("abs(-3)", 3),
        ("1..3", [1, 2, 3]),
    ],
)
def test_literals_and_operators(source: str, expected: object) -> None:
    assert ev(source) == expected


def test_result_indexing_member_access_and_predicates() -> None:
    assert ev("result[0] >= 0.99", result=[0.995]) is True
    assert ev("result[-1]", result=[1.0, 2.0]) == 2.0
    assert ev("result.status == 'ok' && result.count > 3", result={"status": "ok", "count": 4}) is True
    assert ev("result.missing == nil", result={}) is True
    assert ev("result?.a", result=None) is None
    assert ev("all(result, # > 0.9)", result=[0.95, 0.99]) is True
    assert ev("any(result, {# < 0.5})", result=[0.95, 0.1]) is True
    assert ev("count(result, # > 1)", result=[1, 2, 3]) == 2
    assert ev("map(result, # * 2)", result=[1, 2]) == [2, 4]
    assert ev("len(filter(result, # > 1))", result=[1, 2, 3]) == 2
    assert ev("all(result, # > 0)", result=[]) is True


def test_nan_and_inf_compare_as_in_go() -> None:
    nan = math.nan
    assert ev("result[0] >= 0.99", result=[nan]) is False
    assert ev("result[0] < 0.99", result=[nan]) is False
    assert ev("result[0] == result[0]", result=[nan]) is False
    assert ev("result[0] != result[0]", result=[nan]) is True
    assert ev("1 / 0") == math.inf
    assert math.isnan(ev("0 / 0"))  # type: ignore[arg-type]


def test_helper_functions_from_the_environment() -> None:
    env = {"isNaN": math.isnan, "result": [math.nan]}
    assert expr.evaluate("isNaN(result[0])", env) is True


@pytest.mark.parametrize(
    ("source", "column", "fragment"),
    [
        ("result[0] >= ", 14, "unexpected end of expression"),
        ("result[0] >== 1", 13, "unexpected character '='"),
        ("(1 + 2", 7, "expected ')'"),
        ("1 @ 2", 3, "unexpected character '@'"),
        ("'abc", 1, "unexpected character"),
        ("", 1, "empty expression"),
        ("# > 1", 1, "'#' is only allowed inside a predicate"),
    ],
)
def test_parse_errors_name_the_position(source: str, column: int, fragment: str) -> None:
    with pytest.raises(ExprError) as info:
        expr.compile_expr(source)
    assert fragment in info.value.message
    assert info.value.pos + 1 == column
    assert f"column {column}" in str(info.value)
    assert repr(source) in str(info.value)


@pytest.mark.parametrize(
    ("source", "env", "fragment"),
    [
        ("result[0] > 1", {"result": []}, "index out of range: 0 (array length is 0)"),
        ("resutl[0] > 1", {"result": [1]}, "unknown name resutl"),
        ("'a' < 1", {}, "invalid operation: string < int"),
        ("1 and true", {}, "operands must be bool"),
        ("result.x", {"result": 3}, "cannot fetch x from int"),
        ("nope(1)", {}, "unknown function nope"),
        ("len(1)", {}, "len(): invalid argument for len (type int)"),
        ("5 % 0", {}, "integer divide by zero"),
    ],
)
def test_runtime_errors(source: str, env: dict[str, object], fragment: str) -> None:
    with pytest.raises(ExprError) as info:
        expr.evaluate(source, env)
    assert fragment in str(info.value)


def test_runtime_error_position_points_at_the_operator() -> None:
    with pytest.raises(ExprError) as info:
        expr.evaluate("1 < 2 and result[3] > 0", {"result": [1]})
    assert info.value.pos == "1 < 2 and result[3] > 0".index("[")


def test_short_circuit_skips_the_right_side() -> None:
    assert ev("false and result[9] > 0", result=[]) is False
    assert ev("true or result[9] > 0", result=[]) is True
    assert ev("len(result) > 0 and result[0] > 0.5", result=[]) is False
