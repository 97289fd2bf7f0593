"""The part of jq that Argo CD's ``ignoreDifferences.jqPathExpressions`` use, without a jq binary.

Argo CD runs ``del(<expression>)`` through gojq on both sides of a diff. Real
manifests use a small, stable subset: field and index paths, iteration, and
``select`` on equality. Implementing that subset here keeps the diff pure (no
subprocess, no native library) and lets an unsupported expression fail when the
Application is loaded, with a message naming it, instead of silently never matching.

Supported::

    .                       .a.b              ."x.y"  .["x.y"]  .a["x.y"]
    .a[0]  .a[-1]           .a[]  .a[]?       .a.b?
    | select(COND)          COND: OPERAND (== | !=) OPERAND, and, or, ( ), COND | not
    OPERAND: a path as above (relative to the selected value), "string", number, true, false, null

Semantics follow jq: a field of ``null`` is ``null``; iterating ``null`` or indexing a
value of the wrong type is an error unless the step ends in ``?``; ``select`` keeps its
input where the condition is true; deleting a path that does not exist changes nothing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JqError", "JqRuntimeError", "Path", "Program", "compile", "delete"]

Path = tuple[str | int, ...]
"""A location inside a JSON document: object keys and array indexes, outermost first."""

_SUPPORTED = (
    'supported: .a.b, ."x.y", .a["k"], .a[0], .a[], a trailing ?, | select(.k == "v") with ==, !=, and, or, not'
)


class JqError(ValueError):
    """A jq path expression funade does not understand; the message names it."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"jq path expression {expression!r}: {reason}")
        self.expression = expression
        self.reason = reason


class JqRuntimeError(JqError):
    """The expression is valid but cannot run on this document (jq raises the same error)."""


# --- syntax -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    optional: bool = False


@dataclass(frozen=True)
class _Index:
    index: int
    optional: bool = False


@dataclass(frozen=True)
class _Iterate:
    optional: bool = False


_Step = _Field | _Index | _Iterate


@dataclass(frozen=True)
class _PathTerm:
    steps: tuple[_Step, ...]


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Cond
    right: _Cond


@dataclass(frozen=True)
class _BoolOp:
    op: str  # "and" | "or"
    left: _Cond
    right: _Cond


@dataclass(frozen=True)
class _Not:
    inner: _Cond


_Cond = _PathTerm | _Literal | _Compare | _BoolOp | _Not


@dataclass(frozen=True)
class _Select:
    cond: _Cond


_Stage = _PathTerm | _Select

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<op>==|!=)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[.\[\]()|?])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise JqError(expression, f"unsupported syntax at column {pos + 1} ({expression[pos:]!r}); {_SUPPORTED}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def _fail(self, what: str, token: _Token | None = None) -> JqError:
        token = token or self.token
        found = repr(token.text) if token.kind != "end" else "the end"
        return JqError(self.expression, f"{what} at column {token.pos + 1} (found {found}); {_SUPPORTED}")

    def _take(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.at += 1
            return token
        return None

    def _expect(self, kind: str, text: str) -> None:
        if self._take(kind, text) is None:
            raise self._fail(f"expected {text!r}")

    def parse(self) -> tuple[_Stage, ...]:
        stages = [self._stage()]
        while self._take("punct", "|"):
            stages.append(self._stage())
        if self.token.kind != "end":
            raise self._fail("unsupported syntax")
        return tuple(stages)

    def _stage(self) -> _Stage:
        if self.token.kind == "word" and self.token.text == "select":
            self.at += 1
            self._expect("punct", "(")
            cond = self._or()
            if self._take("punct", "|"):
                if self._take("word", "not") is None:
                    raise self._fail("only '| not' may follow a condition inside select")
                cond = _Not(cond)
            self._expect("punct", ")")
            return _Select(cond)
        return self._path()

    def _path(self) -> _PathTerm:
        steps: list[_Step] = []
        token = self.token
        if token.kind == "field":
            self.at += 1
            steps.append(_Field(token.text[1:]))
        elif token.kind == "punct" and token.text == ".":
            self.at += 1
            if self.token.kind == "string":
                steps.append(_Field(self._string(self.token)))
                self.at += 1
            elif self.token.kind == "punct" and self.token.text == "[":
                steps.append(self._bracket())
        else:
            raise self._fail("expected a path starting with '.'")
        while True:
            token = self.token
            if token.kind == "field":
                self.at += 1
                steps.append(_Field(token.text[1:]))
            elif token.kind == "punct" and token.text == "." and self.tokens[self.at + 1].kind == "string":
                self.at += 1
                steps.append(_Field(self._string(self.token)))
                self.at += 1
            elif token.kind == "punct" and token.text == "." and self.tokens[self.at + 1].text == "[":
                self.at += 1
                steps.append(self._bracket())
            elif token.kind == "punct" and token.text == "[":
                steps.append(self._bracket())
            elif token.kind == "punct" and token.text == "?":
                if not steps:
                    raise self._fail("'?' must follow a path step")
                self.at += 1
                steps[-1] = _optional(steps[-1])
            else:
                return _PathTerm(tuple(steps))

    def _bracket(self) -> _Step:
        self._expect("punct", "[")
        token = self.token
        step: _Step
        if token.kind == "punct" and token.text == "]":
            step = _Iterate()
        elif token.kind == "string":
            self.at += 1
            step = _Field(self._string(token))
        elif token.kind == "number" and re.fullmatch(r"-?\d+", token.text):
            self.at += 1
            step = _Index(int(token.text))
        else:
            raise self._fail("expected ']', a \"key\" or an integer index inside [ ]")
        self._expect("punct", "]")
        return step

    def _string(self, token: _Token) -> str:
        try:
            value = json.loads(token.text)
        except ValueError:
            raise self._fail("invalid string literal", token) from None
        return str(value)

    def _or(self) -> _Cond:
        left = self._and()
        while self._take("word", "or"):
            left = _BoolOp("or", left, self._and())
        return left

    def _and(self) -> _Cond:
        left = self._compare()
        while self._take("word", "and"):
            left = _BoolOp("and", left, self._compare())
        return left

    def _compare(self) -> _Cond:
        left = self._operand()
        token = self._take("op")
        if token is not None:
            return _Compare(token.text, left, self._operand())
        return left

    def _operand(self) -> _Cond:
        token = self.token
        if token.kind == "string":
            self.at += 1
            return _Literal(self._string(token))
        if token.kind == "number":
            self.at += 1
            return _Literal(json.loads(token.text))
        if token.kind == "word" and token.text in ("true", "false", "null"):
            self.at += 1
            return _Literal({"true": True, "false": False, "null": None}[token.text])
        if self._take("punct", "("):
            inner = self._or()
            if self._take("punct", "|"):
                if self._take("word", "not") is None:
                    raise self._fail("only '| not' may follow a condition")
                inner = _Not(inner)
            self._expect("punct", ")")
            return inner
        if token.kind == "field" or (token.kind == "punct" and token.text == "."):
            return self._path()
        raise self._fail("expected a path, a literal or '('")


def _optional(step: _Step) -> _Step:
    if isinstance(step, _Field):
        return _Field(step.name, True)
    if isinstance(step, _Index):
        return _Index(step.index, True)
    return _Iterate(True)


# --- evaluation --------------------------------------------------------------------------


class _StepError(Exception):
    """jq's runtime error, before it is given the expression's name."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _step(step: _Step, value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    try:
        if isinstance(step, _Field):
            if value is None:
                yield (*path, step.name), None
            elif isinstance(value, dict):
                yield (*path, step.name), value.get(step.name)
            else:
                raise _StepError(f'cannot index {_type_name(value)} with "{step.name}"')
        elif isinstance(step, _Index):
            if value is None:
                yield (*path, step.index), None
            elif isinstance(value, list):
                index = step.index + len(value) if step.index < 0 else step.index
                if index >= 0:
                    yield (*path, index), value[index] if index < len(value) else None
            else:
                raise _StepError(f"cannot index {_type_name(value)} with number")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield (*path, i), item
        elif isinstance(value, dict):
            for key, item in value.items():
                yield (*path, key), item
        else:
            raise _StepError(f"cannot iterate over {_type_name(value)}")
    except _StepError:
        if not step.optional:
            raise


def _term_paths(term: _PathTerm, value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    current: list[tuple[Path, Any]] = [(path, value)]
    for step in term.steps:
        current = [out for p, v in current for out in _step(step, v, p)]
    yield from current


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _values(cond: _Cond, value: Any) -> Iterator[Any]:
    if isinstance(cond, _Literal):
        yield cond.value
    elif isinstance(cond, _PathTerm):
        for _, found in _term_paths(cond, value, ()):
            yield found
    elif isinstance(cond, _Compare):
        for right in _values(cond.right, value):
            for left in _values(cond.left, value):
                yield (left == right) if cond.op == "==" else (left != right)
    elif isinstance(cond, _Not):
        for inner in _values(cond.inner, value):
            yield not _truthy(inner)
    else:
        for left in _values(cond.left, value):
            if cond.op == "and" and not _truthy(left):
                yield False
            elif cond.op == "or" and _truthy(left):
                yield True
            else:
                for right in _values(cond.right, value):
                    yield _truthy(right)


@dataclass(frozen=True)
class Program:
    """A compiled jq path expression."""

    expression: str
    _stages: tuple[_Stage, ...] = field(repr=False, compare=False)

    def paths(self, doc: Any) -> list[Path]:
        """Every path the expression addresses in ``doc``, without duplicates, in jq's output order.

        Raises:
            JqRuntimeError: a step does not apply to the value it meets (jq errors the same way).
        """
        current: list[tuple[Path, Any]] = [((), doc)]
        try:
            for stage in self._stages:
                if isinstance(stage, _Select):
                    current = [(p, v) for p, v in current for ok in _values(stage.cond, v) if _truthy(ok)]
                else:
                    current = [out for p, v in current for out in _term_paths(stage, v, p)]
        except _StepError as exc:
            raise JqRuntimeError(self.expression, str(exc)) from None
        seen: dict[Path, None] = {}
        for path, _ in current:
            seen.setdefault(path, None)
        return list(seen)


def compile(expression: str) -> Program:
    """Parse a jq path expression of the supported subset.

    Raises:
        JqError: naming the expression, the column and what is supported.
    """
    stages = _Parser(expression).parse()
    if all(isinstance(s, _PathTerm) and not s.steps for s in stages):
        raise JqError(expression, "addresses the whole document; name a field inside it")
    return Program(expression, stages)


def _sort_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    # jq orders numbers before strings; deleting the greatest paths first keeps indexes valid.
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def _delete_path(doc: Any, path: Path) -> None:
    parent = doc
    for part in path[:-1]:
        if parent is None:
            return
        if isinstance(parent, dict) and isinstance(part, str):
            parent = parent.get(part)
        elif isinstance(parent, list) and isinstance(part, int):
            if part >= len(parent):
                return
            parent = parent[part]
        else:
            raise _StepError(f"cannot delete inside {_type_name(parent)}")
    last = path[-1]
    if parent is None:
        return
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int):
        if last < len(parent):
            del parent[last]
    else:
        raise _StepError(f"cannot delete field of {_type_name(parent)}")


def delete(doc: Any, program: Program | str) -> Any:
    """``del(expression)``: a copy of ``doc`` without the addressed values.

    Raises:
        JqError: the expression is not of the supported subset.
        JqRuntimeError: the expression cannot run on ``doc``.
    """
    program = compile(program) if isinstance(program, str) else program
    paths: Sequence[Path] = sorted(program.paths(doc), key=_sort_key, reverse=True)
    result = copy.deepcopy(doc)
    try:
        for path in paths:
            if path:
                _delete_path(result, path)
    except _StepError as exc:
        raise JqRuntimeError(program.expression, str(exc)) from None
    return result
