"""The condition language of Argo Rollouts analysis: a safe subset of expr-lang, parsed and evaluated.

Argo evaluates ``successCondition`` and ``failureCondition`` with expr-lang (formerly
antonmedv/expr) against an environment holding ``result`` and a few helpers
(``utils/evaluate/evaluate.go``: ``asInt``, ``asFloat``, ``isNaN``, ``isInf``, ``isNil``,
``default``). Templates people already have use that language, so funade reads it rather
than inventing one, and never hands the text to Python's ``eval``.

Supported: number, string, ``true``/``false``/``nil`` literals; array literals; names from
the environment; ``a.b``, ``a?.b``, ``a[i]`` (negative indexes count from the end, as in
expr); unary ``not ! - +``; ``** ^ * / % + -``; comparisons; ``in`` / ``not in``;
``contains startsWith endsWith matches``; ``and or && ||``; ``?:`` and ``??``; builtins
``len abs all any none one filter map count`` (a predicate uses ``#`` for the element,
with or without braces) plus Argo's helpers. Precedences are expr's (``parser/operator``):
``or`` 10, ``and`` 15, comparisons 20, ``+ -`` 30, ``* / %`` 60, ``**`` 100 (right),
unary ``not`` 50 and ``-`` 90, ``??`` 500.

Values follow expr's Go semantics where it matters: ``/`` always divides as floats,
comparisons with NaN are false, ``==`` between different kinds is false rather than an
error, ``<`` between a string and a number is an error, a missing map key is ``nil``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ExprError", "Expression", "Node", "compile_expr", "evaluate"]

Value = object
"""Any value an expression handles: None, bool, int, float, str, list, tuple or mapping."""


class ExprError(ValueError):
    """An expression that does not parse or fails while evaluating, with the offending position."""

    def __init__(self, message: str, source: str, pos: int) -> None:
        self.message = message
        self.source = source
        self.pos = pos
        super().__init__(f"{message} (column {pos + 1} of {source!r})")


@dataclass(frozen=True)
class Node:
    """One AST node: ``kind`` names the construct, ``value`` holds a literal, name or operator."""

    kind: str
    pos: int
    value: object = None
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Expression:
    """A parsed expression; evaluate it with :func:`evaluate`."""

    source: str
    root: Node


# ---------------------------------------------------------------------------- lexer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d[\d_]*)?\.\d[\d_]*(?:[eE][+-]?\d+)?|\d[\d_]*(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F_]+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>\?\?|\?\.|\*\*|==|!=|<=|>=|&&|\|\||\.\.|[-+*/%^<>!?:.,()\[\]{}\#])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # num, str, name, op, eof
    text: str
    pos: int
    value: object = None


def _unquote(text: str, source: str, pos: int) -> str:
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            raise ExprError(f"invalid escape \\{nxt} in string", source, pos + 1 + i)
    return "".join(out)


def _lex(source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    at = 0
    while at < len(source):
        m = _TOKEN.match(source, at)
        if m is None:
            raise ExprError(f"unexpected character {source[at]!r}", source, at)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "num":
            clean = text.replace("_", "")
            num: object
            if clean[:2] in ("0x", "0X"):
                num = int(clean, 16)
            elif any(c in clean for c in ".eE"):
                num = float(clean)
            else:
                num = int(clean)
            toks.append(_Tok("num", text, at, num))
        elif kind == "str":
            toks.append(_Tok("str", text, at, _unquote(text, source, at)))
        elif kind in ("name", "op"):
            toks.append(_Tok(kind, text, at))
        at = m.end()
    toks.append(_Tok("eof", "", len(source)))
    return toks


# ---------------------------------------------------------------------------- parser

_BINARY: dict[str, tuple[int, bool]] = {  # operator -> (precedence, right-associative)
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    "<=": (20, False),
    ">=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_NORMALISE = {"||": "or", "&&": "and", "!": "not", "^": "**"}
_PREDICATE_BUILTINS = frozenset({"all", "any", "none", "one", "filter", "map", "count"})
_KEYWORDS = frozenset(
    {"true", "false", "nil", "and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}
)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _lex(source)
        self.i = 0
        self.predicate_depth = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok) -> ExprError:
        return ExprError(message, self.source, tok.pos)

    def expect(self, text: str) -> _Tok:
        tok = self.peek()
        if tok.kind != "op" or tok.text != text:
            found = "end of expression" if tok.kind == "eof" else repr(tok.text)
            raise self.error(f"expected {text!r}, found {found}", tok)
        return self.take()

    def at_op(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text == text

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise self.error("empty expression", self.peek())
        node = self.expression(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise self.error(f"unexpected {tok.text!r}", tok)
        return node

    def binary_op(self) -> tuple[str, int, Node | None] | None:
        """The binary operator at the cursor (``not in`` spans two tokens), without consuming it."""
        tok = self.peek()
        if tok.kind == "name" and tok.text == "not":
            nxt = self.peek(1)
            if nxt.kind == "name" and nxt.text == "in":
                return "not in", 2, None
            return None
        if tok.kind in ("op", "name") and tok.text in _BINARY:
            return tok.text, 1, None
        return None

    def expression(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            found = self.binary_op()
            tok = self.peek()
            if found is None:
                if self.at_op("?") and min_prec == 0:
                    self.take()
                    then = self.expression(0)
                    self.expect(":")
                    other = self.expression(0)
                    left = Node("cond", tok.pos, None, (left, then, other))
                    continue
                return left
            op, width, _ = found
            prec, right_assoc = _BINARY["in" if op == "not in" else op]
            if prec < min_prec or (prec == min_prec and not right_assoc):
                return left
            for _ in range(width):
                self.take()
            right = self.expression(prec if right_assoc else prec + 1)
            left = Node("binary", tok.pos, _NORMALISE.get(op, op), (left, right))

    def unary(self) -> Node:
        tok = self.peek()
        if tok.text in _UNARY and tok.kind in ("op", "name"):
            self.take()
            operand = self.expression(_UNARY[tok.text])
            return Node("unary", tok.pos, _NORMALISE.get(tok.text, tok.text), (operand,))
        return self.postfix(self.primary())

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Node("lit", tok.pos, tok.value)
        if tok.kind == "str":
            return Node("lit", tok.pos, tok.value)
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                return Node("lit", tok.pos, tok.text == "true")
            if tok.text == "nil":
                return Node("lit", tok.pos, None)
            if tok.text in _KEYWORDS:
                raise self.error(f"unexpected {tok.text!r}", tok)
            if self.at_op("("):
                return self.call(tok)
            return Node("name", tok.pos, tok.text)
        if tok.kind == "op":
            if tok.text == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if tok.text == "[":
                items: list[Node] = []
                while not self.at_op("]"):
                    items.append(self.expression(0))
                    if not self.at_op("]"):
                        self.expect(",")
                self.expect("]")
                return Node("array", tok.pos, None, tuple(items))
            if tok.text == "#":
                if self.predicate_depth == 0:
                    raise self.error("'#' is only allowed inside a predicate", tok)
                return Node("pointer", tok.pos)
        if tok.kind == "eof":
            raise self.error("unexpected end of expression", tok)
        raise self.error(f"unexpected {tok.text!r}", tok)

    def call(self, name: _Tok) -> Node:
        self.expect("(")
        args: list[Node] = []
        while not self.at_op(")"):
            if name.text in _PREDICATE_BUILTINS and len(args) == 1:
                args.append(self.predicate())
            else:
                args.append(self.expression(0))
            if not self.at_op(")"):
                self.expect(",")
        self.expect(")")
        return Node("call", name.pos, name.text, tuple(args))

    def predicate(self) -> Node:
        self.predicate_depth += 1
        try:
            if self.at_op("{"):
                start = self.take()
                body = self.expression(0)
                self.expect("}")
                return Node("closure", start.pos, None, (body,))
            body = self.expression(0)
            return Node("closure", body.pos, None, (body,))
        finally:
            self.predicate_depth -= 1

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in (".", "?."):
                self.take()
                field = self.take()
                if field.kind != "name":
                    raise self.error("expected a field name after '.'", field)
                node = Node("member", tok.pos, (field.text, tok.text == "?."), (node,))
            elif tok.kind == "op" and tok.text == "[":
                self.take()
                index = self.expression(0)
                self.expect("]")
                node = Node("index", tok.pos, None, (node, index))
            else:
                return node


def compile_expr(source: str) -> Expression:
    """Parse ``source``; raises :class:`ExprError` naming the position of the first problem."""
    return Expression(source, _Parser(source).parse())


# ---------------------------------------------------------------------------- evaluator


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: object) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _equal(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right  # NaN == NaN is False, as in Go
    if _kind(left) != _kind(right):
        return False
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    return left == right


class _Eval:
    def __init__(self, expr: Expression, env: Mapping[str, object]) -> None:
        self.expr = expr
        self.env = env
        self.pointer: list[object] = []

    def error(self, message: str, node: Node) -> ExprError:
        return ExprError(message, self.expr.source, node.pos)

    def run(self, node: Node) -> object:
        kind = node.kind
        if kind == "lit":
            return node.value
        if kind == "name":
            name = str(node.value)
            if name not in self.env:
                raise self.error(f"unknown name {name}", node)
            return self.env[name]
        if kind == "pointer":
            return self.pointer[-1]
        if kind == "array":
            return [self.run(item) for item in node.args]
        if kind == "unary":
            return self.unary(node)
        if kind == "binary":
            return self.binary(node)
        if kind == "cond":
            test = self.run(node.args[0])
            if not isinstance(test, bool):
                raise self.error(f"non-bool expression (type {_kind(test)}) used as condition", node)
            return self.run(node.args[1] if test else node.args[2])
        if kind == "member":
            return self.member(node)
        if kind == "index":
            return self.index(node)
        if kind == "call":
            return self.call(node)
        raise self.error(f"cannot evaluate {kind}", node)  # pragma: no cover - parser emits no other kinds

    def unary(self, node: Node) -> object:
        value = self.run(node.args[0])
        if node.value == "not":
            if not isinstance(value, bool):
                raise self.error(f"invalid operation: not ({_kind(value)})", node)
            return not value
        if not _is_number(value):
            raise self.error(f"invalid operation: {node.value} ({_kind(value)})", node)
        assert isinstance(value, (int, float))
        return -value if node.value == "-" else value

    def binary(self, node: Node) -> object:
        op = str(node.value)
        if op in ("and", "or"):
            left = self.run(node.args[0])
            if not isinstance(left, bool):
                raise self.error(f"invalid operation: {_kind(left)} {op} ...: operands must be bool", node)
            if (op == "and" and not left) or (op == "or" and left):
                return left
            right = self.run(node.args[1])
            if not isinstance(right, bool):
                raise self.error(f"invalid operation: bool {op} {_kind(right)}: operands must be bool", node)
            return right
        if op == "??":
            left = self.run(node.args[0])
            return self.run(node.args[1]) if left is None else left
        left = self.run(node.args[0])
        right = self.run(node.args[1])
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        if op in ("in", "not in"):
            found = self.contains(right, left, node)
            return found if op == "in" else not found
        if op in ("<", "<=", ">", ">="):
            return self.compare(op, left, right, node)
        if op in ("contains", "startsWith", "endsWith", "matches"):
            return self.string_op(op, left, right, node)
        return self.arith(op, left, right, node)

    def contains(self, container: object, item: object, node: Node) -> bool:
        if isinstance(container, Mapping):
            return item in container
        if isinstance(container, (list, tuple)):
            return any(_equal(item, element) for element in container)
        if container is None:
            return False
        raise self.error(f"invalid operation: in {_kind(container)}", node)

    def compare(self, op: str, left: object, right: object, node: Node) -> bool:
        ok = (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))
        if not ok:
            raise self.error(f"invalid operation: {_kind(left)} {op} {_kind(right)}", node)
        a, b = left, right
        assert isinstance(a, (int, float, str)) and isinstance(b, (int, float, str))
        if op == "<":
            return a < b  # type: ignore[operator]
        if op == "<=":
            return a <= b  # type: ignore[operator]
        if op == ">":
            return a > b  # type: ignore[operator]
        return a >= b  # type: ignore[operator]

    def string_op(self, op: str, left: object, right: object, node: Node) -> bool:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise self.error(f"invalid operation: {_kind(left)} {op} {_kind(right)}", node)
        if op == "contains":
            return right in left
        if op == "startsWith":
            return left.startswith(right)
        if op == "endsWith":
            return left.endswith(right)
        try:
            return re.search(right, left) is not None
        except re.error as exc:
            raise self.error(f"invalid regular expression {right!r}: {exc}", node) from None

    def arith(self, op: str, left: object, right: object, node: Node) -> object:
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            return left + right
        if op == "..":
            if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
                return list(range(left, right + 1))
            raise self.error(f"invalid operation: {_kind(left)} .. {_kind(right)}", node)
        if not (_is_number(left) and _is_number(right)):
            raise self.error(f"invalid operation: {_kind(left)} {op} {_kind(right)}", node)
        assert isinstance(left, (int, float)) and isinstance(right, (int, float))
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return _float_div(float(left), float(right))
        if op == "%":
            if not (isinstance(left, int) and isinstance(right, int)):
                raise self.error(f"invalid operation: {_kind(left)} % {_kind(right)}", node)
            if right == 0:
                raise self.error("integer divide by zero", node)
            return int(math.fmod(left, right))  # Go's % truncates toward zero
        try:
            return math.pow(float(left), float(right))
        except (OverflowError, ValueError):
            return math.inf if left > 0 else math.nan

    def member(self, node: Node) -> object:
        assert isinstance(node.value, tuple)
        field = str(node.value[0])
        optional = bool(node.value[1])
        base = self.run(node.args[0])
        if base is None:
            if optional:
                return None
            raise self.error(f"cannot fetch {field} from nil", node)
        if isinstance(base, Mapping):
            return base.get(field)
        raise self.error(f"cannot fetch {field} from {_kind(base)}", node)

    def index(self, node: Node) -> object:
        base = self.run(node.args[0])
        key = self.run(node.args[1])
        if isinstance(base, Mapping):
            return base.get(key) if isinstance(key, str) else None
        if isinstance(base, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                if isinstance(key, float) and key.is_integer():
                    key = int(key)
                else:
                    raise self.error(f"cannot use {_kind(key)} as index to {_kind(base)}", node)
            assert isinstance(key, int)
            at = key + len(base) if key < 0 else key
            if not 0 <= at < len(base):
                raise self.error(f"index out of range: {key} (array length is {len(base)})", node)
            return base[at]
        if base is None:
            raise self.error("cannot index nil", node)
        raise self.error(f"cannot index {_kind(base)}", node)

    def call(self, node: Node) -> object:
        name = str(node.value)
        if name in _PREDICATE_BUILTINS:
            return self.predicate_call(name, node)
        fn = self.env.get(name, _BUILTINS.get(name))
        if fn is None:
            raise self.error(f"unknown function {name}", node)
        if not callable(fn):
            raise self.error(f"{name} is not a function", node)
        args = [self.run(arg) for arg in node.args]
        try:
            return fn(*args)
        except ExprError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.error(f"{name}(): {exc}", node) from None

    def predicate_call(self, name: str, node: Node) -> object:
        if len(node.args) != 2:
            raise self.error(f"{name}() takes an array and a predicate", node)
        items = self.run(node.args[0])
        if items is None:
            items = []
        if not isinstance(items, (list, tuple)):
            raise self.error(f"{name}() needs an array, got {_kind(items)}", node)
        body = node.args[1].args[0]
        outcomes: list[object] = []
        for item in items:
            self.pointer.append(item)
            try:
                outcome = self.run(body)
            finally:
                self.pointer.pop()
            if name != "map" and not isinstance(outcome, bool):
                raise self.error(f"{name}() predicate must return bool, got {_kind(outcome)}", node)
            outcomes.append(outcome)
        if name == "map":
            return outcomes
        if name == "filter":
            return [item for item, keep in zip(items, outcomes, strict=True) if keep]
        hits = sum(1 for outcome in outcomes if outcome)
        return {
            "all": hits == len(outcomes),
            "any": hits > 0,
            "none": hits == 0,
            "one": hits == 1,
            "count": hits,
        }[name]


def _float_div(left: float, right: float) -> float:
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


def _len(value: object) -> int:
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise TypeError(f"invalid argument for len (type {_kind(value)})")


def _abs(value: object) -> object:
    if _is_number(value):
        assert isinstance(value, (int, float))
        return abs(value)
    raise TypeError(f"invalid argument for abs (type {_kind(value)})")


_BUILTINS: dict[str, Callable[..., object]] = {"len": _len, "abs": _abs}


def evaluate(expr: Expression | str, env: Mapping[str, object]) -> object:
    """Evaluate ``expr`` against ``env`` (names and callables); raises :class:`ExprError` on failure."""
    compiled = compile_expr(expr) if isinstance(expr, str) else expr
    return _Eval(compiled, env).run(compiled.root)


def names(expr: Expression) -> Sequence[str]:
    """The environment names an expression refers to, in order of appearance (for validation)."""
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.kind == "name" and node.value not in found:
            found.append(str(node.value))
        for child in node.args:
            walk(child)

    walk(expr.root)
    return found
