"""Load Kubernetes manifests (YAML or JSON text) into documents that know their lines.

A manifest error is only useful if it says where: ``deploy.yaml:12: spec.replicas:
Input should be a valid integer``. This module parses the text with PyYAML's composer
so every field keeps the line it came from, splits multi-document files, expands
``kind: List`` documents, checks the object header (``apiVersion``, ``kind``,
``metadata.name``), and turns validation failures from the typed models into
:class:`ManifestError` values that point at the offending field.

It reads no files: callers pass the text and a source name for messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "Document",
    "FieldError",
    "ManifestError",
    "Path",
    "error_from_validation",
    "format_path",
    "load_documents",
    "validation_issues",
]

Path = tuple[str | int, ...]
"""A field path: mapping keys and list indexes, e.g. ``("spec", "containers", 0)``."""

STDIN = "<stdin>"

# Alias expansion can make a small file describe an enormous tree ("billion laughs");
# refuse documents with more values than any real manifest has.
_MAX_VALUES = 1_000_000


class ManifestError(Exception):
    """A manifest that cannot be loaded or validated, with where it went wrong.

    Attributes:
        source: the file name, or ``"<stdin>"``.
        line: 1-based line of the problem, when known.
        field: the field path (``spec.template.spec.containers[0].image``), when known.
        message: what is wrong.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = STDIN,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field or None
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        # kubectl-style messages such as 'unknown field "spec.x"' already name the field.
        if self.field and self.field not in self.message:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ManifestError({self.message!r}, source={self.source!r}, line={self.line!r}, field={self.field!r})"


class FieldError(ValueError):
    """A validation failure at a path relative to the value being validated.

    Model validators raise it for cross-field rules (a volume mount naming an unknown
    volume, say) so that :func:`error_from_validation` can point at the exact field
    rather than at the model that holds it.
    """

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        self.path: Path = tuple(path)
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


def format_path(path: Sequence[str | int]) -> str:
    """Render a path the way Kubernetes does: ``spec.containers[0].image``.

    Keys that are not plain identifiers (``app.kubernetes.io/name``) are rendered as
    ``[key]``, like ``metadata.labels[app.kubernetes.io/name]``.
    """
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{part}]")
    return "".join(out)


@dataclass(frozen=True)
class Document:
    """One Kubernetes object as loaded from text.

    Attributes:
        obj: the object, as plain JSON-compatible data.
        source: the file name, or ``"<stdin>"``.
        line: the 1-based line where the document's content starts.
        lines: the line of every field, keyed by path; use :meth:`line_of`.
    """

    obj: dict[str, Any]
    source: str = STDIN
    line: int = 1
    lines: Mapping[Path, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def api_version(self) -> str:
        """The object's ``apiVersion`` (``""`` when absent)."""
        value = self.obj.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        """The object's ``kind`` (``""`` when absent)."""
        value = self.obj.get("kind")
        return value if isinstance(value, str) else ""

    @property
    def name(self) -> str:
        """``metadata.name``, else ``metadata.generateName``, else ``""``."""
        metadata = self.obj.get("metadata")
        if isinstance(metadata, dict):
            for key in ("name", "generateName"):
                value = metadata.get(key)
                if isinstance(value, str) and value:
                    return value
        return ""

    def line_of(self, path: Sequence[str | int]) -> int:
        """Return the line of the field at ``path``, or of its nearest known parent."""
        key = tuple(path)
        while key:
            line = self.lines.get(key)
            if line is not None:
                return line
            key = key[:-1]
        return self.line

    def error(self, message: str, path: Sequence[str | int] = ()) -> ManifestError:
        """Build a :class:`ManifestError` about the field at ``path`` in this document."""
        return ManifestError(
            message,
            source=self.source,
            line=self.line_of(path),
            field=format_path(path) or None,
        )


# --- YAML --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings, as Kubernetes' YAML decoder does."""

    def construct_timestamp_as_str(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):  # pragma: no cover - timestamps are scalars
            raise yaml.constructor.ConstructorError(None, None, "expected a scalar", node.start_mark)
        return str(self.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_timestamp_as_str)

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _yaml_error(exc: yaml.YAMLError, source: str) -> ManifestError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        problem = exc.problem or "invalid YAML"
        message = f"invalid YAML: {problem}"
        if exc.context and exc.context_mark is not None:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        elif exc.context:
            message += f" ({exc.context})"
        return ManifestError(message, source=source, line=exc.problem_mark.line + 1)
    return ManifestError(f"invalid YAML: {exc}", source=source)


class _Indexer:
    """Records the line of every field and rejects what JSON cannot represent."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path, int] = {}
        self._seen: set[int] = set()
        self._ancestors: set[int] = set()

    def fail(self, message: str, node: Node, path: Path) -> ManifestError:
        return ManifestError(
            message,
            source=self.source,
            line=node.start_mark.line + 1,
            field=format_path(path) or None,
        )

    def walk(self, node: Node, path: Path) -> None:
        if id(node) in self._ancestors:
            raise self.fail("recursive YAML alias", node, path)
        if id(node) in self._seen:
            return  # an alias: its fields were indexed where the anchor is
        self._seen.add(id(node))
        self._ancestors.add(id(node))
        if isinstance(node, MappingNode):
            self._mapping(node, path)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.lines[child] = item.start_mark.line + 1
                self.walk(item, child)
        self._ancestors.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path) -> None:
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.fail("mapping keys must be scalars", key_node, path)
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in first_seen:
                raise self.fail(
                    f'duplicate key "{key}" (already set on line {first_seen[key]})',
                    key_node,
                    child,
                )
            first_seen[key] = line
            self.lines[child] = line
            self.walk(value_node, child)


def _key(key: object) -> str:
    """Stringify a mapping key as Kubernetes' YAML-to-JSON conversion does."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _jsonable(value: Any, path: Path, budget: list[int], doc: Document) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise doc.error("document too large (too many values after YAML alias expansion)")
    if isinstance(value, dict):
        return {_key(k): _jsonable(v, (*path, _key(k)), budget, doc) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, (*path, i), budget, doc) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise doc.error(f"unsupported YAML value of type {type(value).__name__}", path)


def _compose(text: str, source: str) -> Iterator[Document]:
    """Yield every document in ``text`` with its line index (empty ones included)."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() promised one
                continue
            indexer = _Indexer(source)
            indexer.walk(node, ())
            line = node.start_mark.line + 1
            raw = loader.construct_document(node)
            shell = Document({}, source, line, indexer.lines)
            obj = _jsonable(raw, (), [_MAX_VALUES], shell)
            if obj is None:
                continue
            if not isinstance(obj, dict):
                kind = "a list" if isinstance(obj, list) else f"a {type(obj).__name__}"
                raise ManifestError(
                    f"a document must be a mapping (an object), got {kind}",
                    source=source,
                    line=line,
                )
            yield Document(obj, source, line, indexer.lines)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()


def _is_list(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list)


def _expand(doc: Document) -> Iterator[Document]:
    """Yield the document, or the items of a ``List`` document (recursively)."""
    if not _is_list(doc.obj):
        yield doc
        return
    list_kind: str = doc.obj["kind"]
    list_version = doc.obj.get("apiVersion")
    for index, item in enumerate(doc.obj["items"]):
        prefix: Path = ("items", index)
        if not isinstance(item, dict):
            raise doc.error("a List item must be a mapping (an object)", prefix)
        obj = dict(item)
        if list_kind != "List":
            # A typed list (DeploymentList) may leave the kind and version to the list.
            obj.setdefault("kind", list_kind.removesuffix("List"))
            if list_version is not None:
                obj.setdefault("apiVersion", list_version)
        lines = {p[2:]: n for p, n in doc.lines.items() if p[:2] == prefix and len(p) > 2}
        yield from _expand(Document(obj, doc.source, doc.line_of(prefix), lines))


def _check_header(doc: Document) -> None:
    obj = doc.obj
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if value is None:
            raise ManifestError(f"{key} is required", source=doc.source, line=doc.line, field=key)
        if not isinstance(value, str) or not value:
            raise doc.error(f"{key} must be a non-empty string", (key,))
    metadata = obj.get("metadata")
    if metadata is None:
        raise ManifestError("metadata.name is required", source=doc.source, line=doc.line, field="metadata")
    if not isinstance(metadata, dict):
        raise doc.error("metadata must be a mapping (an object)", ("metadata",))
    name = metadata.get("name")
    generate_name = metadata.get("generateName")
    if name is None and generate_name is None:
        raise ManifestError(
            "name or generateName is required",
            source=doc.source,
            line=doc.line,
            field="metadata.name",
        )
    for key, value in (("name", name), ("generateName", generate_name)):
        if value is not None and (not isinstance(value, str) or not value):
            raise doc.error(f"metadata.{key} must be a non-empty string", ("metadata", key))


def load_documents(text: str, source: str = STDIN) -> list[Document]:
    """Split YAML or JSON text into Kubernetes object documents.

    Empty documents are skipped; ``List`` documents (``kind: List`` or a typed list
    such as ``DeploymentList`` with ``items``) are replaced by their items.

    Args:
        text: the manifest text (one or more ``---``-separated YAML documents, or JSON).
        source: the name used in error messages (a file name, or ``"<stdin>"``).

    Returns:
        The documents in file order.

    Raises:
        ManifestError: invalid YAML (with the line of the problem), a document that
            is not a mapping, duplicate keys, or an object without ``apiVersion``,
            ``kind`` or ``metadata.name``/``metadata.generateName``.
    """
    documents: list[Document] = []
    for composed in _compose(text, source):
        for doc in _expand(composed):
            _check_header(doc)
            documents.append(doc)
    return documents


# --- validation errors ---------------------------------------------------------------

_PREFIXES = ("Value error, ", "Assertion failed, ")
_TYPE_ERRORS = frozenset(
    {
        "bool_type",
        "bool_parsing",
        "dict_type",
        "float_type",
        "int_type",
        "int_parsing",
        "list_type",
        "literal_error",
        "model_type",
        "string_type",
    }
)


def _resolve(loc: Sequence[str | int], obj: Any, keep_last: bool) -> Path:
    """Map a pydantic error location onto the document, dropping validator tags."""
    path: list[str | int] = []
    current = obj
    for position, part in enumerate(loc):
        in_dict = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
        elif keep_last and position == len(loc) - 1:
            path.append(part)
        # Anything else is a union member or validator name ("int", "function-after[...]").
    return tuple(path)


def _describe(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # pragma: no cover - documents hold JSON data
        return repr(value)


def validation_issues(exc: ValidationError, obj: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """Turn a pydantic error into ``(path, message)`` pairs located in ``obj``.

    Unknown fields read ``unknown field "spec.x"`` (as ``kubectl --validate=strict``
    says), missing ones ``image is required``, type errors name the value found.
    """
    issues: list[tuple[Path, str]] = []
    for error in exc.errors():
        kind = error["type"]
        loc = error["loc"]
        path = _resolve(loc, obj, keep_last=kind in ("missing", "extra_forbidden"))
        message = error["msg"]
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            path = (*path, *cause.path)
            message = cause.message
        elif kind == "missing":
            message = f"{path[-1]} is required" if path else "required field is missing"
        elif kind == "extra_forbidden":
            message = f'unknown field "{format_path(path)}"'
        elif kind in _TYPE_ERRORS and not isinstance(error.get("input"), dict | list):
            message = f"{message}, got {_describe(error.get('input'))}"
        issues.append((path, message))
    # Unknown fields first: kubectl's strict decoding reports them before validation,
    # and a typo (imagee) explains the "image is required" that follows it.
    unknown = [i for i in issues if i[1].startswith("unknown field ")]
    return unknown + [i for i in issues if not i[1].startswith("unknown field ")]


def error_from_validation(doc: Document, exc: ValidationError) -> ManifestError:
    """Convert a pydantic ``ValidationError`` raised on ``doc`` into a ManifestError.

    The error names the field and line of the first problem; when there are several,
    the message lists them all, joined with ``"; "``.
    """
    issues = validation_issues(exc, doc.obj) or [((), str(exc))]
    first_path, first_message = issues[0]
    parts = [first_message]
    for path, message in issues[1:]:
        rendered = format_path(path)
        parts.append(f"{rendered}: {message}" if rendered and rendered not in message else message)
    return ManifestError(
        "; ".join(parts),
        source=doc.source,
        line=doc.line_of(first_path),
        field=format_path(first_path) or None,
    )
