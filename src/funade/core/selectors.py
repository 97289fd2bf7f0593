"""Label selectors: matching, kubectl's ``-l`` syntax, and display.

Deployments find their pods, Services their endpoints and ``funade get -l`` its
objects through label selectors. Kubernetes has two spellings of the same idea: the
structured ``LabelSelector`` (``matchLabels`` + ``matchExpressions``) in manifests,
and the string form (``app=web,tier in (a,b),!canary``) on the command line. Both are
turned into one :class:`Selector` value here, so there is a single matching rule.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "LabelSelectorLike",
    "Operator",
    "Requirement",
    "RequirementLike",
    "Selector",
    "from_label_selector",
    "label_key_error",
    "label_value_error",
    "matches",
    "parse_selector",
    "selector_string",
]


class Operator(enum.StrEnum):
    """Selector operators; the first four are the ``matchExpressions`` ones."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    EQUALS = "="
    NOT_EQUALS = "!="
    GREATER_THAN = "Gt"
    LESS_THAN = "Lt"


EXPRESSION_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST})


class RequirementLike(Protocol):
    """A ``matchExpressions`` entry as a typed model (e.g. ``objects``' one)."""

    @property
    def key(self) -> str: ...

    @property
    def operator(self) -> str: ...

    @property
    def values(self) -> Sequence[str] | None: ...


class LabelSelectorLike(Protocol):
    """A ``LabelSelector`` as a typed model (e.g. ``objects.LabelSelector``)."""

    @property
    def match_labels(self) -> Mapping[str, str] | None: ...

    @property
    def match_expressions(self) -> Sequence[RequirementLike] | None: ...


_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_key_error(key: str) -> str | None:
    """Check a label (or annotation) key; return why it is invalid, or None.

    A key is a qualified name: an optional DNS-subdomain prefix and ``/``, then a name
    of at most 63 characters of alphanumerics, ``-``, ``_`` and ``.``, starting and
    ending with an alphanumeric.
    """
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return f"invalid key {key!r}: prefix part must be non-empty"
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix):
            return f"invalid key {key!r}: prefix part must be a lowercase RFC 1123 subdomain (e.g. 'example.com')"
        if "/" in prefix:
            return f"invalid key {key!r}: a qualified name may contain at most one '/'"
    if not name:
        return f"invalid key {key!r}: name part must be non-empty"
    if len(name) > 63:
        return f"invalid key {key!r}: name part must be no more than 63 characters"
    if not _NAME.fullmatch(name):
        return (
            f"invalid key {key!r}: name part must consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def label_value_error(value: str) -> str | None:
    """Check a label value (empty, or at most 63 name characters); return why not, or None."""
    if value == "":
        return None
    if len(value) > 63:
        return f"invalid label value {value!r}: must be no more than 63 characters"
    if not _NAME.fullmatch(value):
        return (
            f"invalid label value {value!r}: must be empty or consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        match self.operator:
            case Operator.IN | Operator.EQUALS:
                return present and labels[self.key] in self.values
            case Operator.NOT_IN | Operator.NOT_EQUALS:
                return not present or labels[self.key] not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                if not present:
                    return False
                try:
                    actual = int(labels[self.key])
                except ValueError:
                    return False
                bound = int(self.values[0])
                return actual > bound if self.operator is Operator.GREATER_THAN else actual < bound
        raise AssertionError(self.operator)  # pragma: no cover - enum is exhaustive

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.EQUALS | Operator.NOT_EQUALS:
                return f"{self.key}{self.operator.value}{self.values[0]}"
            case Operator.GREATER_THAN:
                return f"{self.key}>{self.values[0]}"
            case Operator.LESS_THAN:
                return f"{self.key}<{self.values[0]}"
            case _:
                word = "in" if self.operator is Operator.IN else "notin"
                return f"{self.key} {word} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; no requirements means "everything"."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether ``labels`` satisfy every requirement."""
        return all(r.matches(labels) for r in self.requirements)

    def __call__(self, labels: Mapping[str, str]) -> bool:
        return self.matches(labels)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement(key: str, operator: Operator, values: Sequence[str]) -> Requirement:
    """Build a requirement, validating it as ``labels.NewRequirement`` does."""
    if (error := label_key_error(key)) is not None:
        raise ValueError(error)
    count = len(values)
    if operator in (Operator.IN, Operator.NOT_IN) and count == 0:
        raise ValueError(f"{key}: for 'in', 'notin' operators, values set can't be empty")
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS) and count != 1:
        raise ValueError(f"{key}: exact-match compatibility requires one single value")
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and count != 0:
        raise ValueError(f"{key}: values set must be empty for exists and does not exist")
    if operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if count != 1 or not re.fullmatch(r"-?[0-9]+", values[0]):
            raise ValueError(f"{key}: for 'Gt', 'Lt' operators, exactly one integer value")
    else:
        for value in values:
            if (error := label_value_error(value)) is not None:
                raise ValueError(f"{key}: {error}")
    if operator in (Operator.IN, Operator.NOT_IN):
        values = sorted(set(values))  # a set, as in Kubernetes
    return Requirement(key, operator, tuple(values))


def _sorted(requirements: Sequence[Requirement]) -> Selector:
    return Selector(tuple(sorted(requirements, key=lambda r: r.key)))


def from_label_selector(selector: LabelSelectorLike | Mapping[str, Any] | Selector) -> Selector:
    """Turn a structured ``LabelSelector`` into a :class:`Selector`.

    Accepts a typed model with ``match_labels``/``match_expressions``, the raw
    manifest form (``{"matchLabels": ..., "matchExpressions": ...}``) or a
    :class:`Selector` (returned unchanged).

    Raises:
        ValueError: an unknown operator or a requirement Kubernetes would reject.
    """
    if isinstance(selector, Selector):
        return selector
    raw_expressions: list[tuple[str, str, Sequence[str]]] = []
    if isinstance(selector, Mapping):
        match_labels = selector.get("matchLabels") or {}
        for expression in selector.get("matchExpressions") or ():
            if not isinstance(expression, Mapping):
                raise ValueError(f"invalid matchExpressions entry {expression!r}")
            raw_expressions.append(
                (
                    str(expression.get("key", "")),
                    str(expression.get("operator", "")),
                    list(expression.get("values") or ()),
                )
            )
    else:
        match_labels = selector.match_labels or {}
        raw_expressions.extend((e.key, e.operator, list(e.values or ())) for e in selector.match_expressions or ())
    requirements = [_requirement(k, Operator.EQUALS, [v]) for k, v in match_labels.items()]
    for key, operator, values in raw_expressions:
        try:
            op = Operator(operator)
        except ValueError:
            op = None
        if op is None or op not in EXPRESSION_OPERATORS:
            raise ValueError(f"{key}: {operator!r} is not a valid label selector operator")
        requirements.append(_requirement(key, op, values))
    return _sorted(requirements)


def matches(
    selector: LabelSelectorLike | Mapping[str, Any] | Selector | None,
    labels: Mapping[str, str],
) -> bool:
    """Tell whether ``labels`` are selected.

    An empty selector (``{}``) selects everything; ``None`` (no selector at all)
    selects nothing, as ``metav1.LabelSelectorAsSelector`` has it.

    Raises:
        ValueError: the selector is malformed.
    """
    if selector is None:
        return False
    return from_label_selector(selector).matches(labels)


# --- kubectl's string syntax -------------------------------------------------------

_SPECIAL = "(),=!<>"


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith(("==", "!="), i):
            tokens.append(text[i : i + 2])
            i += 2
        elif char in _SPECIAL:
            tokens.append(char)
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(text[start:i])
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, what: str) -> ValueError:
        return ValueError(f"unable to parse requirement in {self.text!r}: {what}")

    def identifier(self, what: str) -> str:
        token = self.take()
        if token is None or token in _SPECIAL or token in ("==", "!="):
            raise self.fail(f"expected {what}, found {token or 'end of input'!r}")
        return token

    def selector(self) -> Selector:
        requirements: list[Requirement] = []
        if self.peek() is None:
            return Selector()
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                break
            if token != ",":
                raise self.fail(f"expected ',' or end of input, found {token!r}")
        return _sorted(requirements)

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return self.build(self.identifier("a label key"), Operator.DOES_NOT_EXIST, [])
        key = self.identifier("a label key")
        token = self.peek()
        if token is None or token == ",":
            return self.build(key, Operator.EXISTS, [])
        self.take()
        if token in ("=", "=="):
            return self.build(key, Operator.EQUALS, [self.exact_value()])
        if token == "!=":
            return self.build(key, Operator.NOT_EQUALS, [self.exact_value()])
        if token == ">":
            return self.build(key, Operator.GREATER_THAN, [self.identifier("an integer")])
        if token == "<":
            return self.build(key, Operator.LESS_THAN, [self.identifier("an integer")])
        if token in ("in", "notin"):
            operator = Operator.IN if token == "in" else Operator.NOT_IN
            return self.build(key, operator, self.value_set())
        raise self.fail(f"expected an operator after {key!r}, found {token!r}")

    def exact_value(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""
        return self.identifier("a label value")

    def value_set(self) -> list[str]:
        if self.take() != "(":
            raise self.fail("expected '(' after 'in'/'notin'")
        values: list[str] = []
        expect_value = True
        while True:
            token = self.take()
            if token is None:
                raise self.fail("missing ')'")
            if token == ")":
                if expect_value and values:
                    values.append("")
                return values
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not expect_value or token in _SPECIAL or token in ("==", "!="):
                raise self.fail(f"unexpected {token!r} in value set")
            values.append(token)
            expect_value = False

    def build(self, key: str, operator: Operator, values: Sequence[str]) -> Requirement:
        try:
            return _requirement(key, operator, values)
        except ValueError as exc:
            raise self.fail(str(exc)) from None


def parse_selector(text: str) -> Selector:
    """Parse kubectl's ``-l`` syntax.

    Supports ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``,
    ``!a``, ``a>1``, ``a<1``, joined by commas. The empty string selects everything.
    The result is also a predicate: ``parse_selector("app=web")({"app": "web"})``.

    Raises:
        ValueError: the text is not a valid selector.
    """
    return _Parser(text).selector()


def selector_string(selector: LabelSelectorLike | Mapping[str, Any] | Selector | None) -> str:
    """Render a selector in kubectl's syntax (``app=web,tier in (a,b)``).

    ``None`` and the empty selector render as ``""``; renderers usually show that as
    ``<none>``.
    """
    if selector is None:
        return ""
    return str(from_label_selector(selector))
