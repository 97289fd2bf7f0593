"""Argo CD ``ApplicationSet``: generators, templates, and the Applications they produce.

An ApplicationSet stamps one Application template out once per parameter set. funade
reads the same documents and produces :class:`funade.core.gitops.application.Application`
values, so one model serves apps written by hand and apps generated. Generation is pure:
the git generators read the repository through :class:`RepoView`, a small Protocol the git
adapter implements (tests pass an in-memory fake).

Semantics follow argo-cd ``applicationset/`` (generators/{list,git,matrix,
generator_spec_processor}.go, utils/{utils,map}.go) and the operator manual:

- **list**: each element is a parameter set. Without ``goTemplate`` Argo CD refuses
  element values that are not strings (``error parsing value as string``); funade uses
  booleans and numbers as their text and warns (the seed's ``autoSync: true``). ``values``
  becomes ``values.<key>``; ``elementsYaml`` adds elements from YAML text.
- **git directories**: directories matched by Go ``path.Match`` globs, minus any matched
  by an ``exclude: true`` entry (exclusion wins, order does not matter), never hidden
  ones. Parameters ``path``, ``path.basename``, ``path.basenameNormalized``, ``path[n]``
  (non-empty segments) and ``commitSHA``; with ``goTemplate`` ``.path.path``,
  ``.path.basename``, ``.path.basenameNormalized``, ``.path.segments``, ``.commitSHA``.
- **git files**: JSON/YAML files matched like ``git ls-files -- <glob>`` (``*`` crosses
  ``/``, Argo's default) or, with ``new_git_file_globbing``, doublestar globs. Each file
  (or each item of a list file) is a parameter set: its keys flattened with dots and
  printed as Go's ``%v`` prints them (numbers are float64: ``1e+06``), plus ``path`` (the
  directory), ``path.basename``, ``path.filename``, the ``…Normalized`` forms,
  ``path[n]`` and ``commitSHA``. ``pathParamPrefix`` and ``values`` as in Argo.
- **matrix**: exactly two children; the second is rendered with each parameter set of
  the first before it runs (so a git child can use ``{{path.basename}}`` of the other).
  Without ``goTemplate`` the sets are combined and a key with two different values is an
  error; with it the first child's values win. Templates on matrix children are ignored,
  as in Argo.
- ``selector`` (``matchLabels``/``matchExpressions``) filters any generator's sets, and a
  generator's own ``template`` is merged over ``spec.template`` (its set fields win).
- **templates**: without ``goTemplate``, fasttemplate ``{{ name }}`` substitution in every
  string and map key; unknown names stay as written. With it, a subset of Go
  ``text/template`` (see :func:`render`) and ``goTemplateOptions: [missingkey=error]``;
  other constructs fail with a message naming them.
- Argo's CRD types boolean and integer fields of the template, so ``prune:
  '{{autoSync}}'`` is refused by the API server. funade renders it and converts ``true``
  / ``false`` (or digits), with a warning saying so.
- Generated Applications live in the ApplicationSet's namespace, get the resources
  finalizer unless the template sets finalizers or ``preserveResourcesOnDeletion`` is
  on, and two with one name fail the whole set (``contains applications with duplicate
  name``), naming both parameter sets.

Refused with :class:`ApplicationSetError`: the cluster, SCM provider, pull request,
cluster-decision-resource, plugin and merge generators, nested matrices, ``templatePatch``,
progressive syncs (``strategy``) and ``ignoreApplicationDifferences``.
"""

from __future__ import annotations

import ast
import copy
import enum
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import yaml

from funade.core import fields
from funade.core.gitops import application

__all__ = [
    "ApplicationSet",
    "ApplicationSetError",
    "ApplicationsSync",
    "GitGenerator",
    "GitItem",
    "ListGenerator",
    "MatrixGenerator",
    "MissingKey",
    "RepoView",
    "Selector",
    "SelectorRequirement",
    "SyncPolicy",
    "generate",
    "parse",
    "render",
    "sanitize_name",
]

_KIND_LABELS = {
    "clusters": "Cluster",
    "scmProvider": "SCM Provider",
    "pullRequest": "Pull Request",
    "clusterDecisionResource": "Cluster Decision Resource",
    "plugin": "Plugin",
    "merge": "Merge",
}
_SPEC_REFUSED = {
    "templatePatch": "templatePatch is not supported; put the fields in spec.template",
    "strategy": "progressive syncs (strategy) are not supported",
    "ignoreApplicationDifferences": "ignoreApplicationDifferences is not supported",
}
_SPEC_KEYS = ("generators", "template", "goTemplate", "goTemplateOptions", "syncPolicy", "applyNestedSelectors")
_TEMPLATE_META_KEYS = ("name", "namespace", "labels", "annotations", "finalizers")
_TEMPLATED = re.compile(r"\{\{.*\}\}")
_INVALID_DNS_CHARS = re.compile(r"[^-a-z0-9.]")
# Fields of the Application spec the CRD types as booleans or integers, relative to the template.
_TYPED_FIELDS: dict[tuple[str, ...], str] = {
    ("spec", "syncPolicy", "automated", "prune"): "boolean",
    ("spec", "syncPolicy", "automated", "selfHeal"): "boolean",
    ("spec", "syncPolicy", "automated", "allowEmpty"): "boolean",
    ("spec", "syncPolicy", "automated", "enabled"): "boolean",
    ("spec", "syncPolicy", "retry", "refresh"): "boolean",
    ("spec", "syncPolicy", "retry", "limit"): "integer",
    ("spec", "syncPolicy", "retry", "backoff", "factor"): "integer",
    ("spec", "revisionHistoryLimit"): "integer",
    ("spec", "source", "directory", "recurse"): "boolean",
    ("spec", "sources", "*", "directory", "recurse"): "boolean",
}
_INTEGER = re.compile(r"^-?[0-9]+$")


class ApplicationSetError(ValueError):
    """An ApplicationSet Argo CD would refuse, or one funade cannot run; the message names the field."""


_f = fields.Fields(ApplicationSetError)
_mapping, _list, _str = _f.mapping, _f.items, _f.text


class ApplicationsSync(enum.StrEnum):
    """``syncPolicy.applicationsSync``: what the controller may do to generated Applications."""

    CREATE_ONLY = "create-only"
    CREATE_UPDATE = "create-update"
    CREATE_DELETE = "create-delete"
    SYNC = "sync"


class MissingKey(enum.StrEnum):
    """``goTemplateOptions: [missingkey=…]``: what a missing map key renders as."""

    DEFAULT = "default"
    INVALID = "invalid"
    ZERO = "zero"
    ERROR = "error"


class RepoView(Protocol):
    """Read-only view of git repositories, as the git generators need it.

    Paths are relative to the repository root, ``/``-separated, without a leading ``/``.
    """

    def commit_sha(self, repo: str, revision: str) -> str:
        """The commit ``revision`` (branch, tag, ``HEAD`` or SHA) names now."""
        ...

    def list_dirs(self, repo: str, revision: str) -> list[str]:
        """Every directory in the tree at ``revision``, at any depth."""
        ...

    def list_files(self, repo: str, revision: str) -> list[str]:
        """Every file in the tree at ``revision``, at any depth."""
        ...

    def read(self, repo: str, revision: str, path: str) -> bytes:
        """The content of one file at ``revision``."""
        ...


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class SelectorRequirement:
    """``matchExpressions[]``: ``operator`` is In, NotIn, Exists or DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selector:
    """A generator's ``selector``: keeps the parameter sets whose flattened params match."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every label and expression holds for ``labels``."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class ListGenerator:
    """``list``: literal parameter sets."""

    elements: tuple[Mapping[str, object], ...] = ()
    elements_yaml: str = ""
    template: Mapping[str, object] | None = None
    selector: Selector | None = None


@dataclass(frozen=True)
class GitItem:
    """``directories[]`` / ``files[]``: a glob, and whether it excludes instead of includes."""

    path: str
    exclude: bool = False


@dataclass(frozen=True)
class GitGenerator:
    """``git``: parameter sets from the directories or the JSON/YAML files of a repository."""

    repo_url: str
    revision: str
    directories: tuple[GitItem, ...] = ()
    files: tuple[GitItem, ...] = ()
    path_param_prefix: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    requeue_after_seconds: int | None = None
    template: Mapping[str, object] | None = None
    selector: Selector | None = None


@dataclass(frozen=True)
class MatrixGenerator:
    """``matrix``: every combination of the parameter sets of exactly two child generators.

    ``children_raw`` keeps the children as written: the second one is rendered with each
    parameter set of the first before it is read again.
    """

    generators: tuple[ListGenerator | GitGenerator, ListGenerator | GitGenerator]
    children_raw: tuple[Mapping[str, object], Mapping[str, object]] = field(repr=False, compare=False)
    template: Mapping[str, object] | None = None
    selector: Selector | None = None


Generator = ListGenerator | GitGenerator | MatrixGenerator


@dataclass(frozen=True)
class SyncPolicy:
    """ApplicationSet ``syncPolicy``."""

    preserve_resources_on_deletion: bool = False
    applications_sync: ApplicationsSync | None = None


@dataclass(frozen=True)
class ApplicationSet:
    """An ``argoproj.io/v1alpha1`` ApplicationSet; the template stays raw until :func:`generate`."""

    name: str
    generators: tuple[Generator, ...]
    template: Mapping[str, object]
    namespace: str = application.DEFAULT_NAMESPACE
    go_template: bool = False
    go_template_options: tuple[str, ...] = ()
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def missing_key(self) -> MissingKey:
        """The ``missingkey`` option in force (the last one given wins, as in Go)."""
        found = MissingKey.DEFAULT
        for option in self.go_template_options:
            found = MissingKey(option.split("=", 1)[1])
        return found


# ---------------------------------------------------------------------------- parsing helpers


def _bool(raw: Mapping[str, object], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApplicationSetError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _str_map(value: object, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in _mapping(value or {}, where).items():
        if not isinstance(item, str):
            raise ApplicationSetError(f"{where}.{key}: expected a string, got {item!r}")
        out[str(key)] = item
    return out


def _unknown(raw: Mapping[str, object], known: Sequence[str], where: str, warnings: list[str]) -> None:
    for key in raw:
        if key not in known:
            warnings.append(f"{where}.{key}: not supported, ignored")


# ---------------------------------------------------------------------------- parsing


def parse(doc: Mapping[str, object]) -> ApplicationSet:
    """Read an ApplicationSet document (as loaded from YAML) and check what can be checked before generation.

    Raises:
        ApplicationSetError: the message starts with the offending field, e.g.
            ``spec.generators[0].clusters: the Cluster generator is not supported``.
    """
    if doc.get("apiVersion") != application.API_VERSION or doc.get("kind") != "ApplicationSet":
        raise ApplicationSetError(
            f"kind: expected {application.API_VERSION} ApplicationSet, got {doc.get('apiVersion')} {doc.get('kind')}"
        )
    warnings: list[str] = []
    meta = _mapping(doc.get("metadata"), "metadata")
    name = _str(meta.get("name"), "metadata.name")
    namespace = meta.get("namespace") or application.DEFAULT_NAMESPACE
    namespace = _str(namespace, "metadata.namespace")
    spec = copy.deepcopy(dict(_mapping(doc.get("spec"), "spec")))  # the model must not share the caller's dicts
    for key, reason in _SPEC_REFUSED.items():
        if spec.get(key) not in (None, "", [], {}):
            raise ApplicationSetError(f"spec.{key}: {reason}")
    if spec.get("preservedFields") is not None:
        warnings.append("spec.preservedFields: not supported, ignored (funade rewrites generated Applications whole)")
    _unknown(spec, (*_SPEC_KEYS, *_SPEC_REFUSED, "preservedFields"), "spec", warnings)
    go = _bool(spec, "goTemplate", "spec")
    options = tuple(
        _str(o, f"spec.goTemplateOptions[{i}]")
        for i, o in enumerate(_list(spec.get("goTemplateOptions"), "spec.goTemplateOptions"))
    )
    for i, option in enumerate(options):
        key, _, value = option.partition("=")
        if key != "missingkey" or value not in tuple(MissingKey):
            raise ApplicationSetError(
                f"spec.goTemplateOptions[{i}]: unknown option {option!r} (use missingkey=default|invalid|zero|error)"
            )
    if options and not go:
        warnings.append("spec.goTemplateOptions: not supported, ignored (goTemplate is off)")
    template = _parse_template(spec.get("template"), "spec.template", warnings)
    policy = _parse_sync_policy(spec.get("syncPolicy"), warnings)
    generators_raw = _list(spec.get("generators"), "spec.generators")
    if not generators_raw:
        raise ApplicationSetError("spec.generators: at least one generator is required")
    generators = tuple(
        _parse_generator(raw, f"spec.generators[{i}]", go=go, nested=False, warnings=warnings)
        for i, raw in enumerate(generators_raw)
    )
    _typed_template_warnings(template, "spec.template", warnings)
    for i, gen in enumerate(generators):
        if gen.template is not None:
            kind = _generator_kind(gen)
            _typed_template_warnings(gen.template, f"spec.generators[{i}].{kind}.template", warnings)
    return ApplicationSet(
        name=name,
        namespace=namespace,
        generators=generators,
        template=template,
        go_template=go,
        go_template_options=options,
        sync_policy=policy,
        warnings=tuple(warnings),
    )


def _generator_kind(gen: Generator) -> str:
    if isinstance(gen, ListGenerator):
        return "list"
    return "git" if isinstance(gen, GitGenerator) else "matrix"


def _parse_template(value: object, where: str, warnings: list[str], *, partial: bool = False) -> Mapping[str, object]:
    if value is None and not partial:
        raise ApplicationSetError(f"{where}: required (the Application to stamp out)")
    raw = _mapping(value or {}, where)
    _unknown(raw, ("metadata", "spec"), where, warnings)
    meta = _mapping(raw.get("metadata") or {}, f"{where}.metadata")
    _unknown(meta, _TEMPLATE_META_KEYS, f"{where}.metadata", warnings)
    if not partial:
        _mapping(raw.get("spec"), f"{where}.spec")
    return raw


def _parse_sync_policy(value: object, warnings: list[str]) -> SyncPolicy:
    if value is None:
        return SyncPolicy()
    raw = _mapping(value, "spec.syncPolicy")
    _unknown(raw, ("preserveResourcesOnDeletion", "applicationsSync"), "spec.syncPolicy", warnings)
    sync: ApplicationsSync | None = None
    value = raw.get("applicationsSync")
    if value is not None:
        try:
            sync = ApplicationsSync(str(value))
        except ValueError:
            allowed = ", ".join(s.value for s in ApplicationsSync)
            raise ApplicationSetError(f"spec.syncPolicy.applicationsSync: {value!r} is not one of {allowed}") from None
    return SyncPolicy(
        preserve_resources_on_deletion=_bool(raw, "preserveResourcesOnDeletion", "spec.syncPolicy"),
        applications_sync=sync,
    )


def _parse_selector(value: object, where: str) -> Selector | None:
    if value is None:
        return None
    raw = _mapping(value, where)
    labels = _str_map(raw.get("matchLabels"), f"{where}.matchLabels")
    expressions: list[SelectorRequirement] = []
    for i, item in enumerate(_list(raw.get("matchExpressions"), f"{where}.matchExpressions")):
        at = f"{where}.matchExpressions[{i}]"
        req = _mapping(item, at)
        operator = _str(req.get("operator"), f"{at}.operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ApplicationSetError(f"{at}.operator: {operator!r} is not In, NotIn, Exists or DoesNotExist")
        values = tuple(_str(v, f"{at}.values[{j}]") for j, v in enumerate(_list(req.get("values"), f"{at}.values")))
        if operator in ("In", "NotIn") and not values:
            raise ApplicationSetError(f"{at}.values: {operator} needs at least one value")
        expressions.append(SelectorRequirement(_str(req.get("key"), f"{at}.key"), operator, values))
    return Selector(labels, tuple(expressions))


def _parse_generator(
    value: object, where: str, *, go: bool, nested: bool, warnings: list[str]
) -> ListGenerator | GitGenerator | MatrixGenerator:
    raw = _mapping(value, where)
    kinds = [k for k in raw if k != "selector" and raw[k] is not None]
    for kind in kinds:
        if kind in _KIND_LABELS:
            raise ApplicationSetError(
                f"{where}.{kind}: the {_KIND_LABELS[kind]} generator is not supported "
                "(funade supports list, git and matrix)"
            )
    kinds = [k for k in kinds if k in ("list", "git", "matrix")]
    _unknown(raw, ("list", "git", "matrix", "selector", *_KIND_LABELS), where, warnings)
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise ApplicationSetError(f"{where}: expected exactly one generator (list, git or matrix), found {found}")
    kind = kinds[0]
    selector = _parse_selector(raw.get("selector"), f"{where}.selector")
    at = f"{where}.{kind}"
    body = _mapping(raw[kind], at)
    template: Mapping[str, object] | None = None
    if body.get("template") is not None:
        if nested:
            warnings.append(f"{at}.template: not supported, ignored (Argo CD ignores templates on matrix children)")
        else:
            template = _parse_template(body.get("template"), f"{at}.template", warnings, partial=True)
    if kind == "list":
        return _parse_list(body, at, go=go, template=template, selector=selector, warnings=warnings)
    if kind == "git":
        return _parse_git(body, at, template=template, selector=selector, warnings=warnings)
    if nested:
        raise ApplicationSetError(f"{at}: nested matrix generators are not supported")
    _unknown(body, ("generators", "template"), at, warnings)
    children_raw = _list(body.get("generators"), f"{at}.generators")
    if len(children_raw) < 2:
        raise ApplicationSetError(f"{at}.generators: found less than two generators, Matrix support only two")
    if len(children_raw) > 2:
        raise ApplicationSetError(f"{at}.generators: found more than two generators, Matrix support only two")
    children: list[ListGenerator | GitGenerator] = []
    for i, child_raw in enumerate(children_raw):
        child = _parse_generator(child_raw, f"{at}.generators[{i}]", go=go, nested=True, warnings=warnings)
        if isinstance(child, MatrixGenerator):  # pragma: no cover - refused above
            raise ApplicationSetError(f"{at}.generators[{i}]: nested matrix generators are not supported")
        children.append(child)
    first, second = _mapping(children_raw[0], f"{at}.generators[0]"), _mapping(children_raw[1], f"{at}.generators[1]")
    return MatrixGenerator((children[0], children[1]), (first, second), template=template, selector=selector)


def _parse_list(
    body: Mapping[str, object],
    where: str,
    *,
    go: bool,
    template: Mapping[str, object] | None,
    selector: Selector | None,
    warnings: list[str],
) -> ListGenerator:
    _unknown(body, ("elements", "elementsYaml", "template"), where, warnings)
    elements: list[Mapping[str, object]] = []
    for i, item in enumerate(_list(body.get("elements"), f"{where}.elements")):
        element = _mapping(item, f"{where}.elements[{i}]")
        if not go:
            _element_params(element, f"{where}.elements[{i}]", warnings)
        elements.append(element)
    elements_yaml = body.get("elementsYaml") or ""
    if not isinstance(elements_yaml, str):
        raise ApplicationSetError(f"{where}.elementsYaml: expected a string, got {type(elements_yaml).__name__}")
    return ListGenerator(tuple(elements), elements_yaml, template=template, selector=selector)


def _parse_git(
    body: Mapping[str, object],
    where: str,
    *,
    template: Mapping[str, object] | None,
    selector: Selector | None,
    warnings: list[str],
) -> GitGenerator:
    known = (
        "repoURL",
        "revision",
        "directories",
        "files",
        "pathParamPrefix",
        "values",
        "requeueAfterSeconds",
        "template",
    )
    _unknown(body, known, where, warnings)
    repo_url = _str(body.get("repoURL"), f"{where}.repoURL")
    revision = body.get("revision")
    if not isinstance(revision, str):
        raise ApplicationSetError(f"{where}.revision: required (a branch, tag, commit or HEAD), got {revision!r}")
    directories = _git_items(body.get("directories"), f"{where}.directories", go_match=True)
    files = _git_items(body.get("files"), f"{where}.files", go_match=False)
    if not directories and not files:
        raise ApplicationSetError(f"{where}: directories or files is required")
    if directories and files:
        warnings.append(f"{where}.files: not supported, ignored (directories is set, and Argo CD then reads only it)")
        files = ()
    prefix = body.get("pathParamPrefix") or ""
    if not isinstance(prefix, str):
        raise ApplicationSetError(f"{where}.pathParamPrefix: expected a string, got {prefix!r}")
    requeue = body.get("requeueAfterSeconds")
    if requeue is not None and (isinstance(requeue, bool) or not isinstance(requeue, int) or requeue < 0):
        raise ApplicationSetError(f"{where}.requeueAfterSeconds: expected a non-negative integer, got {requeue!r}")
    return GitGenerator(
        repo_url=repo_url,
        revision=revision or "HEAD",
        directories=directories,
        files=files,
        path_param_prefix=prefix,
        values=_str_map(body.get("values"), f"{where}.values"),
        requeue_after_seconds=requeue,
        template=template,
        selector=selector,
    )


def _git_items(value: object, where: str, *, go_match: bool) -> tuple[GitItem, ...]:
    items: list[GitItem] = []
    for i, item in enumerate(_list(value, where)):
        raw = _mapping(item, f"{where}[{i}]")
        path = _str(raw.get("path"), f"{where}[{i}].path")
        exclude = _bool(raw, "exclude", f"{where}[{i}]")
        if go_match and "{{" not in path:
            try:
                _glob_regex(path, mode="path.Match")
            except ValueError as exc:
                raise ApplicationSetError(f"{where}[{i}].path: {exc}") from None
        items.append(GitItem(path, exclude))
    return tuple(items)


def _typed_template_warnings(template: Mapping[str, object], where: str, warnings: list[str]) -> None:
    templated_flags = False
    automated_enabled_set = False
    for path, value in _walk(template, ()):
        key = _typed_key(path)
        if key is None or not isinstance(value, str) or "{{" not in value:
            if path[-3:] == ("syncPolicy", "automated", "enabled"):
                automated_enabled_set = True
            continue
        kind = _TYPED_FIELDS[key]
        dotted = _dotted(path)
        converted = '"true"/"false"' if kind == "boolean" else "digits"
        warnings.append(
            f"{where}.{dotted}: {value!r} is a string in a {kind} field; Argo CD's CRD refuses it, "
            f"funade converts the rendered {converted}"
        )
        if path[:3] == ("spec", "syncPolicy", "automated"):
            if path[3] == "enabled":
                automated_enabled_set = True
            else:
                templated_flags = True
    if templated_flags and not automated_enabled_set:
        warnings.append(
            f"{where}.spec.syncPolicy.automated: present in every generated Application, so each one syncs "
            "automatically whatever prune and selfHeal render to; template automated.enabled to turn it off"
        )


def _walk(value: object, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], object]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))
    else:
        yield path, value


def _typed_key(path: Sequence[str | int]) -> tuple[str, ...] | None:
    key = tuple("*" if isinstance(p, int) else p for p in path)
    return key if key in _TYPED_FIELDS else None


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# ---------------------------------------------------------------------------- values and names


def sanitize_name(name: str) -> str:
    """Argo's ``SanitizeName`` (``normalize``): lowercase, ``[^-a-z0-9.]`` to ``-``, at most 253, trimmed of ``-.``."""
    cleaned = _INVALID_DNS_CHARS.sub("-", name.lower())[:253]
    return cleaned.strip("-.")


def _go_float(value: float) -> str:
    """A float64 as Go's ``%v`` prints it (``strconv.FormatFloat(f, 'g', -1, 64)``)."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits_t, exp = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exp, int)
    digits = list(digits_t)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    text = "".join(str(d) for d in digits)
    point = len(digits) + exp  # position of the decimal point in ``text``
    x = point - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:  # shortest %g uses precision 6 to choose %e
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{neg}{text}{'0' * (point - len(text))}"
    return f"{neg}{text[:point]}.{text[point:]}"


def _go_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return "interface {}"


def _go_sprint(value: object, *, top: bool = True) -> str:
    """``fmt.Sprint`` of a JSON-like value (nil is ``<nil>`` inside a collection)."""
    if value is None or value is _MISSING:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_go_sprint(v, top=False) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_sprint(value[k], top=False)}" for k in sorted(value)) + "]"
    return str(value)


def _json_numbers(value: object) -> object:
    """Numbers as Go's ``json.Unmarshal`` into ``interface{}`` leaves them: float64."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return value


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    """jeremywohl/flatten DotStyle: nested keys joined with dots, list items by index; empty containers vanish."""
    out: dict[str, object] = {}
    if isinstance(value, Mapping):
        items: list[tuple[str, object]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return {prefix: value}
    for key, item in items:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(item, Mapping | list):
            out.update(_flatten(item, name))
        else:
            out[name] = item
    return out


def _flat_strings(params: Mapping[str, object]) -> dict[str, str]:
    """``flattenParameters``: flattened and printed with ``%v`` (the selector sees these)."""
    return {k: "<nil>" if v is None else _go_sprint(v) for k, v in _flatten(params).items()}


def _element_text(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    raise ApplicationSetError(
        f"{where}: {value!r} is not a string; without goTemplate list element values must be strings "
        "(set spec.goTemplate: true for nested values)"
    )


def _element_params(element: Mapping[str, object], where: str, warnings: list[str] | None) -> dict[str, object]:
    """One list element as fasttemplate params: strings, with ``values.<k>`` for the ``values`` map."""
    params: dict[str, object] = {}
    for key, value in element.items():
        at = f"{where}.{key}"
        if key == "values":
            for sub_key, sub in _mapping(value, at).items():
                params[f"values.{sub_key}"] = _element_text(sub, f"{at}.{sub_key}")
            continue
        text = _element_text(value, at)
        if warnings is not None and not isinstance(value, str):
            kind = "a boolean" if isinstance(value, bool) else "a number"
            warnings.append(
                f"{at}: {text} is {kind}, not a string; Argo CD refuses it without goTemplate "
                f'("error parsing value as string"), funade uses "{text}"'
            )
        params[str(key)] = text
    return params


# ---------------------------------------------------------------------------- globs


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str, *, mode: str) -> re.Pattern[str]:
    """A compiled regex for one glob.

    ``mode`` is ``path.Match`` (Go: ``*``/``?`` stop at ``/``), ``ls-files`` (git pathspec
    without ``:(glob)``: wildcards cross ``/``) or ``doublestar`` (``**`` as a whole segment
    spans directories, ``{a,b}`` alternatives).

    Raises:
        ValueError: a malformed pattern (unclosed ``[``, trailing ``\\``).
    """
    out: list[str] = []
    i = 0
    n = len(pattern)
    cross = mode == "ls-files"
    braces = 0
    while i < n:
        c = pattern[i]
        if c == "*":
            if mode == "doublestar" and pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] == "/"
                at_end = i + 2 == n or pattern[i + 2] == "/"
                if at_start and at_end:
                    if i + 2 == n:
                        out.append(".*")
                        i += 2
                    else:
                        out.append("(?:.*/)?")
                        i += 3
                    continue
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*" if cross else "[^/]*")
            continue
        if c == "?":
            out.append("." if cross else "[^/]")
        elif c == "[":
            j = i + 1
            negate = j < n and (pattern[j] == "^" or (mode != "path.Match" and pattern[j] == "!"))
            if negate:
                j += 1
            body: list[str] = []
            first = True
            while j < n and (pattern[j] != "]" or (first and mode != "path.Match")):
                ch = pattern[j]
                if ch == "\\":
                    j += 1
                    if j >= n:
                        raise ValueError(f"bad pattern {pattern!r}: trailing backslash")
                    body.append(re.escape(pattern[j]))
                elif ch == "-" and body and j + 1 < n and pattern[j + 1] != "]":
                    body.append("-")  # a range such as a-z
                else:
                    body.append(re.escape(ch))
                first = False
                j += 1
            if j >= n or not body:
                raise ValueError(f"bad pattern {pattern!r}: unclosed or empty character class")
            out.append("[" + ("^" if negate else "") + "".join(body) + "]")
            i = j
        elif c == "\\":
            i += 1
            if i >= n:
                raise ValueError(f"bad pattern {pattern!r}: trailing backslash")
            out.append(re.escape(pattern[i]))
        elif mode == "doublestar" and c == "{":
            braces += 1
            out.append("(?:")
        elif mode == "doublestar" and c == "}" and braces:
            braces -= 1
            out.append(")")
        elif mode == "doublestar" and c == "," and braces:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if braces:
        raise ValueError(f"bad pattern {pattern!r}: unclosed {{")
    return re.compile("".join(out))


def _glob_match(pattern: str, path: str, mode: str) -> bool:
    if mode == "ls-files":
        pattern = pattern.removeprefix("./")
        if not any(c in pattern for c in "*?["):
            literal = pattern.rstrip("/")
            return path == literal or path.startswith(literal + "/")
    try:
        return _glob_regex(pattern, mode=mode).fullmatch(path) is not None
    except ValueError:
        return False  # Argo logs a bad pattern and matches nothing


# ---------------------------------------------------------------------------- fasttemplate


def _fasttemplate(text: str, params: Mapping[str, object], where: str) -> str:
    """Argo's ``Render.Replace`` without goTemplate: ``{{ key }}`` → the string param, others left as written."""
    if not _TEMPLATED.search(text):
        return text
    out: list[str] = []
    at = 0
    while True:
        start = text.find("{{", at)
        if start < 0:
            out.append(text[at:])
            return "".join(out)
        out.append(text[at:start])
        end = text.find("}}", start + 2)
        if end < 0:
            raise ApplicationSetError(f'{where}: invalid template {text!r}: cannot find end tag "}}}}"')
        tag = text[start + 2 : end]
        value = params.get(tag.strip())
        out.append(value if tag.strip() and isinstance(value, str) else "{{" + tag + "}}")
        at = end + 2


# ---------------------------------------------------------------------------- Go templates


class _Missing:
    """A map key that is not there (Go's invalid reflect.Value); prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


_MISSING = _Missing()
_NO_PIPE = object()


class _TemplateError(Exception):
    pass


@dataclass(frozen=True)
class _Field:
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Literal:
    value: object


@dataclass(frozen=True)
class _Ident:
    name: str


@dataclass(frozen=True)
class _Pipe:
    commands: tuple[tuple[_Field | _Literal | _Ident | _Pipe, ...], ...]


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Action:
    pipe: _Pipe


@dataclass
class _If:
    branches: list[tuple[_Pipe, list[_Text | _Action | _If]]]
    otherwise: list[_Text | _Action | _If] = field(default_factory=list)


_Node = _Text | _Action | _If
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<field>\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[|()])
  | (?P<other>\$[A-Za-z0-9_]*|:=|=|,|'(?:[^'\\]|\\.)*'|.)
    """,
    re.VERBOSE,
)
_UNSUPPORTED_KEYWORDS = ("range", "with", "define", "template", "block", "break", "continue")


def _split_actions(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``("text", s)`` and ``("action", body)``, applying ``{{-`` / ``-}}`` trimming."""
    pieces: list[tuple[str, str]] = []
    at = 0
    while True:
        start = text.find("{{", at)
        if start < 0:
            pieces.append(("text", text[at:]))
            break
        pieces.append(("text", text[at:start]))
        i = start + 2
        trim_left = text.startswith("-", i) and i + 1 < len(text) and text[i + 1] in " \t\r\n"
        if trim_left:
            i += 2
        end = _action_end(text, i)
        body = text[i:end]
        trim_right = len(body) >= 2 and body.endswith("-") and body[-2] in " \t\r\n"
        if trim_right:
            body = body[:-2]
        if trim_left:
            kind, prev = pieces[-1]
            pieces[-1] = (kind, prev.rstrip(" \t\r\n"))
        pieces.append(("action", body))
        at = end + 2
        if trim_right:
            while at < len(text) and text[at] in " \t\r\n":
                at += 1
    yield from pieces


def _action_end(text: str, at: int) -> int:
    i = at
    while i < len(text):
        c = text[i]
        if text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                raise _TemplateError("unclosed comment")
            i = close + 2
            continue
        if c in "\"'`":
            i += 1
            while i < len(text) and text[i] != c:
                if c != "`" and text[i] == "\\":
                    i += 1
                i += 1
            if i >= len(text):
                raise _TemplateError("unterminated quoted string")
        elif text.startswith("}}", i):
            return i
        i += 1
    raise _TemplateError("unclosed action")


def _tokenize(body: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(body):
        m = _TOKEN.match(body, at)
        assert m is not None and m.lastgroup is not None
        at = m.end()
        if m.lastgroup == "space":
            continue
        if m.lastgroup == "other":
            what = m.group()
            if what.startswith("$"):
                raise _TemplateError(f"variables ({what}) are not supported")
            raise _TemplateError(f"unexpected {what!r} (not supported)")
        tokens.append((m.lastgroup, m.group()))
    return tokens


class _PipeParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def parse(self) -> _Pipe:
        pipe = self._pipe()
        if self.at != len(self.tokens):
            raise _TemplateError(f"unexpected {self.tokens[self.at][1]!r}")
        return pipe

    def _pipe(self) -> _Pipe:
        commands = [self._command()]
        while self.at < len(self.tokens) and self.tokens[self.at] == ("punct", "|"):
            self.at += 1
            commands.append(self._command())
        return _Pipe(tuple(commands))

    def _command(self) -> tuple[_Field | _Literal | _Ident | _Pipe, ...]:
        args: list[_Field | _Literal | _Ident | _Pipe] = []
        while self.at < len(self.tokens):
            kind, text = self.tokens[self.at]
            if (kind, text) in (("punct", "|"), ("punct", ")")):
                break
            self.at += 1
            if (kind, text) == ("punct", "("):
                args.append(self._pipe())
                if self.at >= len(self.tokens) or self.tokens[self.at] != ("punct", ")"):
                    raise _TemplateError("unclosed left paren")
                self.at += 1
                if self.at < len(self.tokens) and self.tokens[self.at][0] == "field":
                    raise _TemplateError("field access on a parenthesized value is not supported")
            elif kind == "field":
                args.append(_Field(tuple(n for n in text.split(".") if n)))
            elif kind in ("string", "raw"):
                args.append(_Literal(_unquote(text)))
            elif kind == "number":
                args.append(_Literal(_number(text)))
            elif text in ("true", "false"):
                args.append(_Literal(text == "true"))
            elif text == "nil":
                args.append(_Literal(None))
            elif text in _UNSUPPORTED_KEYWORDS or text in ("if", "else", "end"):
                raise _TemplateError(f"{text!r} is not allowed here")
            elif text not in _FUNCS:
                raise _TemplateError(f'function "{text}" not defined (funade supports: {", ".join(sorted(_FUNCS))})')
            else:
                args.append(_Ident(text))
        if not args:
            raise _TemplateError("missing value for command")
        return tuple(args)


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise _TemplateError(f"bad string literal {text}") from None
    if not isinstance(value, str):  # pragma: no cover - the token regex only admits strings
        raise _TemplateError(f"bad string literal {text}")
    return value


def _number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


@functools.lru_cache(maxsize=1024)
def _parse_go(text: str) -> tuple[_Node, ...]:
    root: list[_Node] = []
    stack: list[tuple[_If, list[_Node]]] = []  # open ifs and the node list of the parent
    current = root
    for kind, body in _split_actions(text):
        if kind == "text":
            if body:
                current.append(_Text(body))
            continue
        stripped = body.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise _TemplateError("comment ends before closing delimiter")
            continue
        tokens = _tokenize(body)
        if not tokens:
            raise _TemplateError("missing value for command")
        head = tokens[0][1] if tokens[0][0] == "ident" else ""
        if head in _UNSUPPORTED_KEYWORDS:
            raise _TemplateError(f"{{{{{head}}}}} is not supported (funade supports if/else/end, fields and functions)")
        if head == "if":
            node = _If([(_PipeParser(tokens[1:]).parse(), [])])
            current.append(node)
            stack.append((node, current))
            current = node.branches[0][1]
        elif head == "else":
            if not stack:
                raise _TemplateError("unexpected {{else}}")
            node = stack[-1][0]
            if len(tokens) > 1 and tokens[1] == ("ident", "if"):
                node.branches.append((_PipeParser(tokens[2:]).parse(), []))
                current = node.branches[-1][1]
            elif len(tokens) > 1:
                raise _TemplateError("unexpected tokens after else")
            else:
                current = node.otherwise
        elif head == "end":
            if not stack or len(tokens) > 1:
                raise _TemplateError("unexpected {{end}}")
            _, current = stack.pop()
        else:
            current.append(_Action(_PipeParser(tokens).parse()))
    if stack:
        raise _TemplateError("unexpected EOF: {{if}} without {{end}}")
    return tuple(root)


def _truth(value: object) -> bool:
    if value is None or value is _MISSING:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | Mapping):
        return len(value) > 0
    return True


class _Exec:
    def __init__(self, data: Mapping[str, object], missing: MissingKey) -> None:
        self.data = data
        self.missing = missing

    def run(self, nodes: Sequence[_Node], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                out.append(_go_sprint(self.pipe(node.pipe)))
            else:
                for cond, body in node.branches:
                    if _truth(self.pipe(cond)):
                        self.run(body, out)
                        break
                else:
                    self.run(node.otherwise, out)

    def pipe(self, pipe: _Pipe) -> object:
        value: object = _NO_PIPE
        for command in pipe.commands:
            value = self.command(command, value)
        return value

    def command(self, args: Sequence[_Field | _Literal | _Ident | _Pipe], piped: object) -> object:
        head = args[0]
        if isinstance(head, _Ident):
            values = [self.arg(a) for a in args[1:]]
            if piped is not _NO_PIPE:
                values.append(piped)
            return _call(head.name, [None if v is _MISSING else v for v in values])
        if len(args) > 1 or piped is not _NO_PIPE:
            raise _TemplateError("can't give argument to non-function")
        return self.arg(head)

    def arg(self, node: _Field | _Literal | _Ident | _Pipe) -> object:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Pipe):
            return self.pipe(node)
        if isinstance(node, _Ident):
            return _call(node.name, [])
        return self.lookup(node.names)

    def lookup(self, names: Sequence[str]) -> object:
        value: object = self.data
        for name in names:
            if value is _MISSING:
                if self.missing is MissingKey.ERROR:
                    raise _TemplateError(f"nil data; no entry for key {name!r}")
                return _MISSING
            if value is None:
                raise _TemplateError(f"nil pointer evaluating interface {{}}.{name}")
            if not isinstance(value, Mapping):
                # the static type of every value in a map[string]interface{} is interface {}
                raise _TemplateError(f"can't evaluate field {name} in type interface {{}}")
            if name in value:
                value = value[name]
            elif self.missing is MissingKey.ERROR:
                raise _TemplateError(f'map has no entry for key "{name}"')
            else:
                value = None if self.missing is MissingKey.ZERO else _MISSING
        return value


def _want(name: str, args: Sequence[object], count: int) -> None:
    if len(args) != count:
        raise _TemplateError(f"wrong number of args for {name}: want {count} got {len(args)}")


def _string(name: str, value: object) -> str:
    if value is None:
        raise _TemplateError(f"error calling {name}: invalid value; expected string")
    if not isinstance(value, str):
        raise _TemplateError(f"error calling {name}: wrong type for value; expected string; got {_go_type(value)}")
    return value


def _strval(value: object) -> str:
    return "<nil>" if value is None else _go_sprint(value, top=False)


def _compare(name: str, a: object, b: object) -> int:
    if (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    raise _TemplateError(f"error calling {name}: incompatible types for comparison")


def _eq(args: Sequence[object]) -> bool:
    if len(args) < 2:
        raise _TemplateError("error calling eq: missing argument for comparison")
    first = args[0]
    for other in args[1:]:
        if first is None or other is None or isinstance(first, bool) or isinstance(other, bool):
            if first == other and type(first) is type(other):
                return True
            continue
        if _compare("eq", first, other) == 0:
            return True
    return False


def _index(args: Sequence[object]) -> object:
    if not args:
        raise _TemplateError("wrong number of args for index: want at least 1 got 0")
    value = args[0]
    for key in args[1:]:
        if value is None:
            raise _TemplateError("error calling index: index of untyped nil")
        if isinstance(value, list | str):
            if isinstance(key, bool) or not isinstance(key, int):
                raise _TemplateError(f"error calling index: cannot index slice/array with type {_go_type(key)}")
            if not 0 <= key < len(value):
                raise _TemplateError(f"error calling index: index out of range: {key}")
            value = value[key] if isinstance(value, list) else ord(value[key])
        elif isinstance(value, Mapping):
            if not isinstance(key, str):
                raise _TemplateError(f"error calling index: value has type {_go_type(key)}; should be string")
            value = value.get(key)
        else:
            raise _TemplateError(f"error calling index: can't index item of type {_go_type(value)}")
    return value


def _length(value: object) -> int:
    if isinstance(value, str | list | Mapping):
        return len(value)
    raise _TemplateError(f"error calling len: len of type {_go_type(value)}")


def _printf(args: Sequence[object]) -> str:
    if not args or not isinstance(args[0], str):
        raise _TemplateError("error calling printf: the format must be a string")
    fmt, rest = args[0], list(args[1:])
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if not rest:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = rest.pop(0)
        if verb in "sv":
            out.append(_strval(value))
        elif verb == "q":
            out.append('"' + _strval(value).replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif verb == "d" and isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
        elif verb == "d" and isinstance(value, float):
            out.append(f"%!d(float64={_go_float(value)})")  # parameters are float64, as in Go
        elif verb == "t" and isinstance(value, bool):
            out.append("true" if value else "false")
        else:
            raise _TemplateError(f"error calling printf: verb %{verb} is not supported for {_go_type(value)}")
    if rest:
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(v)}={_strval(v)}" for v in rest) + ")")
    return "".join(out)


def _sprint(args: Sequence[object]) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += _strval(arg)
    return out


def _default(args: Sequence[object]) -> object:
    if not args:
        raise _TemplateError("wrong number of args for default: want at least 1 got 0")
    if len(args) < 2 or not _truth(args[1]):
        return args[0]
    return args[1]


def _quote(args: Sequence[object], mark: str) -> str:
    parts = [_strval(a) for a in args if a is not None]
    if mark == '"':
        return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)
    return " ".join(f"'{p}'" for p in parts)


def _trunc(args: Sequence[object]) -> str:
    _want("trunc", args, 2)
    count, text = args[0], _string("trunc", args[1])
    if isinstance(count, bool) or not isinstance(count, int | float):
        raise _TemplateError("error calling trunc: the length must be a number")
    n = int(count)
    if n < 0:
        return text[max(0, len(text) + n) :]
    return text[:n]


def _join(args: Sequence[object]) -> str:
    _want("join", args, 2)
    sep, items = _string("join", args[0]), args[1]
    if isinstance(items, list):
        return sep.join(_strval(i) for i in items)
    return _strval(items)


def _fixed(name: str, count: int, fn: Callable[..., object]) -> Callable[[Sequence[object]], object]:
    def call(args: Sequence[object]) -> object:
        _want(name, args, count)
        return fn(*args)

    return call


def _one_string(name: str, fn: Callable[[str], object]) -> Callable[[Sequence[object]], object]:
    def call(args: Sequence[object]) -> object:
        _want(name, args, 1)
        return fn(_string(name, args[0]))

    return call


def _two_strings(name: str, fn: Callable[[str, str], object]) -> Callable[[Sequence[object]], object]:
    def call(args: Sequence[object]) -> object:
        _want(name, args, 2)
        return fn(_string(name, args[0]), _string(name, args[1]))

    return call


def _replace(args: Sequence[object]) -> str:
    _want("replace", args, 3)
    old, new, text = (_string("replace", a) for a in args)
    return text.replace(old, new)


def _title(text: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


_FUNCS: dict[str, Callable[[Sequence[object]], object]] = {
    # text/template builtins
    "and": lambda a: next((v for v in a if not _truth(v)), a[-1] if a else None),
    "or": lambda a: next((v for v in a if _truth(v)), a[-1] if a else None),
    "not": _fixed("not", 1, lambda x: not _truth(x)),
    "eq": _eq,
    "ne": _fixed("ne", 2, lambda x, y: not _eq([x, y])),
    "lt": _fixed("lt", 2, lambda x, y: _compare("lt", x, y) < 0),
    "le": _fixed("le", 2, lambda x, y: _compare("le", x, y) <= 0),
    "gt": _fixed("gt", 2, lambda x, y: _compare("gt", x, y) > 0),
    "ge": _fixed("ge", 2, lambda x, y: _compare("ge", x, y) >= 0),
    "len": _fixed("len", 1, _length),
    "index": _index,
    "print": _sprint,
    "printf": _printf,
    # sprig, and Argo's normalize
    "default": _default,
    "empty": _fixed("empty", 1, lambda x: not _truth(x)),
    "lower": _one_string("lower", str.lower),
    "upper": _one_string("upper", str.upper),
    "title": _one_string("title", _title),
    "trim": _one_string("trim", str.strip),
    "trimPrefix": _two_strings("trimPrefix", lambda prefix, s: s.removeprefix(prefix)),
    "trimSuffix": _two_strings("trimSuffix", lambda suffix, s: s.removesuffix(suffix)),
    "trimAll": _two_strings("trimAll", lambda cutset, s: s.strip(cutset)),
    "contains": _two_strings("contains", lambda sub, s: sub in s),
    "hasPrefix": _two_strings("hasPrefix", lambda prefix, s: s.startswith(prefix)),
    "hasSuffix": _two_strings("hasSuffix", lambda suffix, s: s.endswith(suffix)),
    "replace": _replace,
    "trunc": _trunc,
    "join": _join,
    "quote": lambda a: _quote(a, '"'),
    "squote": lambda a: _quote(a, "'"),
    "toString": _fixed("toString", 1, _strval),
    "normalize": _one_string("normalize", sanitize_name),
}


def _call(name: str, args: list[object]) -> object:
    return _FUNCS[name](args)


def render(
    text: str,
    params: Mapping[str, object],
    *,
    go_template: bool = False,
    missing_key: MissingKey = MissingKey.DEFAULT,
    where: str = "template",
) -> str:
    """Render one template string the way the ApplicationSet controller renders template fields.

    Without ``go_template``: fasttemplate. ``{{ key }}`` (spaces allowed) becomes the
    string parameter ``key``; an unknown key, a non-string value or ``{{}}`` stays as
    written; a ``{{`` without ``}}`` on a templated line is an error.

    With ``go_template``: Go ``text/template`` with field chains (``.path.basename``),
    literals, pipelines, parentheses, ``if``/``else if``/``else``/``end``, ``{{-``/``-}}``
    trimming, comments, the builtins ``and or not eq ne lt le gt ge len index print
    printf`` and the sprig functions ``default empty lower upper title trim trimPrefix
    trimSuffix trimAll contains hasPrefix hasSuffix replace trunc join quote squote
    toString`` plus Argo's ``normalize``. A missing key renders ``<no value>`` (or fails
    with ``missingkey=error``). ``range``, ``with``, variables and other functions fail.

    Raises:
        ApplicationSetError: the template is malformed or uses something unsupported;
            the message starts with ``where``.
    """
    if not go_template:
        return _fasttemplate(text, params, where)
    try:
        nodes = _parse_go(text)
        out: list[str] = []
        _Exec(params, missing_key).run(nodes, out)
    except _TemplateError as exc:
        raise ApplicationSetError(f"{where}: failed to render go template {text!r}: {exc}") from None
    return "".join(out)


# ---------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class _ParamSet:
    params: dict[str, object]
    origin: str


@dataclass
class _Context:
    appset: ApplicationSet
    repo: RepoView | None
    new_globbing: bool
    shas: dict[tuple[str, str], str] = field(default_factory=dict)
    dirs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    files: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def render_tree(self, value: object, params: Mapping[str, object], where: str) -> object:
        """Every string and map key of ``value`` rendered with ``params`` (``RenderGeneratorParams``)."""
        return _render_tree(value, params, self, where, (), typed=False)

    def text(self, text: str, params: Mapping[str, object], where: str) -> str:
        return render(
            text, params, go_template=self.appset.go_template, missing_key=self.appset.missing_key, where=where
        )

    def repo_view(self, where: str) -> RepoView:
        if self.repo is None:
            raise ApplicationSetError(f"{where}: a git generator needs a repository view")
        return self.repo

    def sha(self, repo_url: str, revision: str, where: str) -> str:
        key = (repo_url, revision)
        if key not in self.shas:
            self.shas[key] = self.repo_view(where).commit_sha(repo_url, revision)
        return self.shas[key]


def _render_tree(
    value: object,
    params: Mapping[str, object],
    ctx: _Context,
    where: str,
    path: tuple[str | int, ...],
    *,
    typed: bool,
) -> object:
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            new_key = (
                ctx.text(str(key), params, f"{where}.{_dotted((*path, str(key)))}") if isinstance(key, str) else key
            )
            out[str(new_key)] = _render_tree(item, params, ctx, where, (*path, str(key)), typed=typed)
        return out
    if isinstance(value, list):
        return [_render_tree(item, params, ctx, where, (*path, i), typed=typed) for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    at = f"{where}.{_dotted(path)}" if path else where
    rendered = ctx.text(value, params, at)
    key = _typed_key(path) if typed and rendered != value else None
    if key is None:
        return rendered
    if _TYPED_FIELDS[key] == "boolean" and rendered in ("true", "false"):
        return rendered == "true"
    if _TYPED_FIELDS[key] == "integer" and _INTEGER.match(rendered):
        return int(rendered)
    return rendered


def _merge_template(override: Mapping[str, object], base: Mapping[str, object]) -> dict[str, object]:
    """``mergo.Merge(generatorTemplate, spec.template)``: fields the generator leaves empty come from ``base``."""
    out: dict[str, object] = copy.deepcopy(dict(override))
    for key, value in base.items():
        mine = out.get(key)
        if isinstance(mine, Mapping) and isinstance(value, Mapping):
            out[key] = _merge_template(mine, value)
        elif mine in (None, "", False, 0, [], {}):
            out[key] = copy.deepcopy(value)
    return out


def _deep_merge(dst: dict[str, object], src: Mapping[str, object]) -> None:
    """``mergo.Merge(dst, src, WithOverride)`` on generic maps: scalars override, maps merge, lists stay."""
    for key, value in src.items():
        mine = dst.get(key)
        if isinstance(value, Mapping) and isinstance(mine, dict):
            _deep_merge(mine, value)
        elif isinstance(value, Mapping | list) and mine not in (None, "", [], {}):
            continue
        elif value is not None:
            dst[key] = copy.deepcopy(value)


def _combine(a: _ParamSet, b: _ParamSet, go: bool, where: str) -> _ParamSet:
    origin = f"{a.origin} × {b.origin}"
    if go:
        merged: dict[str, object] = {}
        _deep_merge(merged, b.params)
        _deep_merge(merged, a.params)
        return _ParamSet(merged, origin)
    left = {k: _strval(v) for k, v in a.params.items()}
    combined: dict[str, object] = dict(left)
    for key, value in b.params.items():
        text = _strval(value)
        if key in left and left[key] != text:
            raise ApplicationSetError(
                f"{where}: found duplicate key {key} with different value, a: {left[key]} ,b: {text} ({origin})"
            )
        combined[key] = text
    return _ParamSet(combined, origin)


def _params(gen: Generator, where: str, ctx: _Context) -> list[_ParamSet]:
    if isinstance(gen, ListGenerator):
        sets = _list_params(gen, f"{where}.list", ctx)
    elif isinstance(gen, GitGenerator):
        sets = _git_params(gen, f"{where}.git", ctx)
    else:
        sets = _matrix_params(gen, f"{where}.matrix", ctx)
    if gen.selector is None:
        return sets
    selector = gen.selector
    return [s for s in sets if selector.matches(_flat_strings(s.params))]


def _list_params(gen: ListGenerator, where: str, ctx: _Context) -> list[_ParamSet]:
    go = ctx.appset.go_template
    out: list[_ParamSet] = []
    elements: list[tuple[str, Mapping[str, object]]] = [
        (f"{where}.elements[{i}]", element) for i, element in enumerate(gen.elements)
    ]
    if gen.elements_yaml:
        try:
            loaded = yaml.load(gen.elements_yaml, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise ApplicationSetError(f"{where}.elementsYaml: not YAML: {exc}") from None
        for j, item in enumerate(_list(loaded, f"{where}.elementsYaml")):
            elements.append((f"{where}.elementsYaml[{j}]", _mapping(item, f"{where}.elementsYaml[{j}]")))
    for origin, element in elements:
        if go:
            converted = _json_numbers(element)
            assert isinstance(converted, dict)
            out.append(_ParamSet(converted, origin))
        else:
            out.append(_ParamSet(_element_params(element, origin, None), origin))
    return out


class _Loader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _go_base(path: str) -> str:
    if path == "":
        return "."
    path = path.rstrip("/")
    return "/" if path == "" else path.rsplit("/", 1)[-1]


def _go_dir(path: str) -> str:
    head = path.rsplit("/", 1)[0] if "/" in path else ""
    return head.rstrip("/") or ("/" if path.startswith("/") else ".")


def _path_params(
    path_value: str,
    sha: str,
    *,
    prefix: str,
    go: bool,
    filename: str | None,
) -> dict[str, object]:
    basename = _go_base(path_value)
    if go:
        info: dict[str, object] = {
            "path": path_value,
            "basename": basename,
            "basenameNormalized": sanitize_name(basename),
            "segments": path_value.split("/"),
        }
        if filename is not None:
            info["filename"] = filename
            info["filenameNormalized"] = sanitize_name(filename)
        if prefix:
            return {prefix: {"path": info, "commitSHA": sha}}
        return {"path": info, "commitSHA": sha}
    name = f"{prefix}.path" if prefix else "path"
    params: dict[str, object] = {
        f"{prefix}.commitSHA" if prefix else "commitSHA": sha,
        name: path_value,
        f"{name}.basename": basename,
        f"{name}.basenameNormalized": sanitize_name(basename),
    }
    if filename is not None:
        params[f"{name}.filename"] = filename
        params[f"{name}.filenameNormalized"] = sanitize_name(filename)
    for i, segment in enumerate(path_value.split("/")):
        if segment:
            params[f"{name}[{i}]"] = segment
    return params


def _add_values(params: dict[str, object], values: Mapping[str, str], ctx: _Context, where: str) -> None:
    """``appendTemplatedValues``: ``values`` rendered with the generator's own params."""
    rendered = {k: ctx.text(v, params, f"{where}.values.{k}") for k, v in values.items()}
    if not rendered:
        return
    if ctx.appset.go_template:
        params["values"] = rendered
    else:
        params.update({f"values.{k}": v for k, v in rendered.items()})


def _git_params(gen: GitGenerator, where: str, ctx: _Context) -> list[_ParamSet]:
    repo = ctx.repo_view(where)
    sha = ctx.sha(gen.repo_url, gen.revision, where)
    go = ctx.appset.go_template
    out: list[_ParamSet] = []
    if gen.directories:
        key = (gen.repo_url, sha)
        if key not in ctx.dirs:
            found = {d.strip("/").removeprefix("./") for d in repo.list_dirs(gen.repo_url, sha)}
            visible = [d for d in found if d and d != "." and not any(s.startswith(".") for s in d.split("/"))]
            ctx.dirs[key] = sorted(visible, key=lambda d: d.split("/"))
        includes = [item.path for item in gen.directories if not item.exclude]
        excludes = [item.path for item in gen.directories if item.exclude]
        for directory in ctx.dirs[key]:
            if not any(_glob_match(p, directory, "path.Match") for p in includes):
                continue
            if any(_glob_match(p, directory, "path.Match") for p in excludes):
                continue
            params = _path_params(directory, sha, prefix=gen.path_param_prefix, go=go, filename=None)
            _add_values(params, gen.values, ctx, where)
            out.append(_ParamSet(params, f"{where} directory {directory!r}"))
        return out
    key = (gen.repo_url, sha)
    if key not in ctx.files:
        ctx.files[key] = sorted({f.lstrip("/").removeprefix("./") for f in repo.list_files(gen.repo_url, sha)})
    mode = "doublestar" if ctx.new_globbing else "ls-files"
    includes = [item.path for item in gen.files if not item.exclude]
    excludes = [item.path for item in gen.files if item.exclude]
    for path in ctx.files[key]:
        if not any(_glob_match(p, path, mode) for p in includes) or any(_glob_match(p, path, mode) for p in excludes):
            continue
        for k, obj in enumerate(_read_objects(repo.read(gen.repo_url, sha, path), f"{where} file {path!r}")):
            obj_params: dict[str, object]
            if go:
                converted = _json_numbers(obj)
                assert isinstance(converted, dict)
                obj_params = converted
            else:
                obj_params = {
                    k2: "<nil>" if v is None else _go_sprint(v) for k2, v in _flatten(_json_numbers(obj)).items()
                }
            obj_params.update(
                _path_params(_go_dir(path), sha, prefix=gen.path_param_prefix, go=go, filename=_go_base(path))
            )
            _add_values(obj_params, gen.values, ctx, where)
            origin = f"{where} file {path!r}" + (f"[{k}]" if k else "")
            out.append(_ParamSet(obj_params, origin))
    return out


def _read_objects(content: bytes, where: str) -> list[Mapping[str, object]]:
    """A JSON/YAML file as a list of objects: a list file gives several, a mapping one, an empty file none."""
    try:
        loaded = yaml.load(content.decode("utf-8"), Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ApplicationSetError(f"{where}: unable to parse file: {exc}") from None
    if loaded is None:
        return []
    if isinstance(loaded, Mapping):
        return [loaded]
    if isinstance(loaded, list) and all(isinstance(item, Mapping) for item in loaded):
        return list(loaded)
    raise ApplicationSetError(f"{where}: unable to parse file: expected a mapping or a list of mappings")


def _matrix_params(gen: MatrixGenerator, where: str, ctx: _Context) -> list[_ParamSet]:
    go = ctx.appset.go_template
    out: list[_ParamSet] = []
    first = _params(gen.generators[0], f"{where}.generators[0]", ctx)
    for a in first:
        second_where = f"{where}.generators[1]"
        second: ListGenerator | GitGenerator = gen.generators[1]
        if a.params:
            rendered = ctx.render_tree(gen.children_raw[1], a.params, second_where)
            reparsed = _parse_generator(rendered, second_where, go=go, nested=True, warnings=[])
            assert not isinstance(reparsed, MatrixGenerator)
            second = reparsed
        for b in _params(second, second_where, ctx):
            out.append(_combine(a, b, go, where))
    return out


def generate(
    appset: ApplicationSet, repo: RepoView | None = None, *, new_git_file_globbing: bool = False
) -> list[application.Application]:
    """The Applications ``appset`` produces now, in generator order.

    Args:
        appset: the parsed ApplicationSet.
        repo: the repository view for git generators (not needed for list generators).
        new_git_file_globbing: read git ``files`` globs as doublestar globs, as Argo CD does
            with ``--enable-new-git-file-globbing`` (off by default there too).

    Raises:
        ApplicationSetError: a generator or template fails, a generated Application is
            invalid (the message names the parameter set that produced it), or two
            Applications share a name.
    """
    ctx = _Context(appset, repo, new_git_file_globbing)
    apps: list[application.Application] = []
    origins: dict[str, str] = {}
    for i, gen in enumerate(appset.generators):
        where = f"spec.generators[{i}]"
        template = dict(appset.template) if gen.template is None else _merge_template(gen.template, appset.template)
        for params in _params(gen, where, ctx):
            app = _build(appset, template, params, ctx)
            if app.name in origins:
                raise ApplicationSetError(
                    f"ApplicationSet {appset.name} contains applications with duplicate name: {app.name} "
                    f"(from {origins[app.name]} and {params.origin})"
                )
            origins[app.name] = params.origin
            apps.append(app)
    return apps


def _build(
    appset: ApplicationSet, template: Mapping[str, object], params: _ParamSet, ctx: _Context
) -> application.Application:
    rendered: object = template
    if params.params:  # Argo renders nothing for an empty parameter set
        rendered = _render_tree(template, params.params, ctx, "spec.template", (), typed=True)
    body = _mapping(rendered, "spec.template")
    meta = dict(_mapping(body.get("metadata") or {}, "spec.template.metadata"))
    if not meta.get("finalizers") and not appset.sync_policy.preserve_resources_on_deletion:
        meta["finalizers"] = [application.RESOURCES_FINALIZER]
    meta["namespace"] = appset.namespace  # Argo CD always creates generated apps in the set's namespace
    doc = {"apiVersion": application.API_VERSION, "kind": "Application", "metadata": meta, "spec": body.get("spec")}
    try:
        return application.parse(doc)
    except application.ApplicationError as exc:
        raise ApplicationSetError(f"ApplicationSet {appset.name}, {params.origin}: {exc}") from None
