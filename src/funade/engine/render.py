"""Rendering an Application's source at a commit into objects, once per commit and settings.

A GitOps controller asks "what should be running?" for every app on every push; in a
monorepo most pushes touch few apps. :class:`Renderer` answers from an in-memory LRU
cache keyed by (source settings, commit), and each answer carries the repository paths
it depended on, so :func:`affected` can tell which apps a push's changed paths touch
(Argo CD's ``manifest-generate-paths``, worked out from the kustomizations instead of
written by hand).

Two kinds of source, chosen the way Argo CD chooses: a directory holding a
kustomization is built with kustomize, after writing the Application's overrides
(``images``, ``namePrefix``, ``nameSuffix``, ``commonLabels``, ``commonAnnotations``)
into a copy of its kustomization file the way ``kustomize edit`` would; any other
directory is read as plain YAML/JSON manifests (recursively when asked). Argo CD's rule
for unreadable files is kept: a file that does not parse is an error when it looks
like a manifest (or is JSON) and is skipped otherwise.

The engine does no git or process I/O itself: the source (``checkout``) and the
kustomize build are handed in (``funade.adapters.gitsource`` and
``funade.adapters.kustomize.render``). It reads the checked-out files.
"""

from __future__ import annotations

import copy
import enum
import os
import posixpath
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import yaml

from funade.core.manifests import ManifestError, load_documents

__all__ = [
    "REMOTE",
    "Checkouts",
    "RenderError",
    "RenderSpec",
    "Rendered",
    "Renderer",
    "SourceType",
    "affected",
    "edit_kustomization",
    "kustomize_dependencies",
]

Obj = dict[str, Any]

#: A dependency outside the repository (a remote base, a Helm chart): always re-render.
REMOTE = "//remote"

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MANIFEST_FILE = re.compile(r"^.*\.(yaml|yml|json|jsonnet)$")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# kustomize edit set image: the tag after the last colon (or "*" to keep the current one).
_IMAGE_TAG = re.compile(r"^(.*):([a-zA-Z0-9._-]*|\*)$")
_PRESERVE = "*"
_ERROR_CHARS = 2000
_WARNING = re.compile(r"# Warning: [^\n]*\n?")  # kustomize's deprecation notes, noise in an error
# Fields of a kustomization naming files or directories, relative to it.
_PATH_LISTS = ("resources", "bases", "components", "crds", "configurations", "generators", "transformers", "validators")
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator")


class RenderError(Exception):
    """An app's source cannot be rendered; the message names the app path and the file."""


class SourceType(enum.StrEnum):
    """How the app directory was rendered (Argo CD's ``status.sourceType``)."""

    DIRECTORY = "Directory"
    KUSTOMIZE = "Kustomize"


class Checkouts(Protocol):
    """What rendering needs of a git source (``funade.adapters.gitsource.GitSource``)."""

    def checkout(self, repo_url: str, commit: str) -> Path:
        """A read-only tree of ``commit``; it must not be modified."""
        ...


def _frozen(value: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in sorted(value.items())})


@dataclass(frozen=True)
class RenderSpec:
    """What to render: an Application's ``spec.source`` without its ``targetRevision``.

    The spec is hashable (it is the cache key); labels and annotations are compared
    and hashed as sorted pairs, so their order does not matter.

    Attributes:
        repo_url: the repository (``repoURL``).
        path: the app directory, relative to the repository root (``"."`` is the root).
        directory_recurse: read subdirectories of a plain directory (``directory.recurse``).
        images: ``kustomize.images`` entries as ``kustomize edit set image`` takes them.
        name_prefix: ``kustomize.namePrefix``.
        name_suffix: ``kustomize.nameSuffix``.
        common_labels: ``kustomize.commonLabels``.
        common_annotations: ``kustomize.commonAnnotations``.
        force_common_labels: ``kustomize.forceCommonLabels`` (overwrite labels the
            kustomization already sets instead of failing).
        force_common_annotations: ``kustomize.forceCommonAnnotations``.
    """

    repo_url: str
    path: str = "."
    directory_recurse: bool = False
    images: tuple[str, ...] = ()
    name_prefix: str = ""
    name_suffix: str = ""
    common_labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    common_annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    force_common_labels: bool = False
    force_common_annotations: bool = False
    _metadata: tuple[tuple[tuple[str, str], ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        clean = posixpath.normpath(self.path.strip().replace("\\", "/").lstrip("/") or ".")
        if clean == ".." or clean.startswith("../"):
            raise ValueError(f"app path {self.path!r} leaves the repository")
        object.__setattr__(self, "path", clean)
        object.__setattr__(self, "images", tuple(self.images))
        labels, annotations = _frozen(self.common_labels), _frozen(self.common_annotations)
        object.__setattr__(self, "common_labels", labels)
        object.__setattr__(self, "common_annotations", annotations)
        object.__setattr__(self, "_metadata", (tuple(labels.items()), tuple(annotations.items())))

    @property
    def has_kustomize_overrides(self) -> bool:
        """Whether anything must be written into the kustomization before building."""
        return bool(
            self.images or self.name_prefix or self.name_suffix or self.common_labels or self.common_annotations
        )

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> RenderSpec:
        """The spec for an Argo CD ``spec.source`` mapping.

        Raises:
            RenderError: the source uses something funade does not render (Helm,
                plugins, jsonnet, include/exclude globs, kustomize patches …), named.
        """
        repo = source.get("repoURL")
        if not isinstance(repo, str) or not repo:
            raise RenderError("spec.source.repoURL is required")
        unsupported = [f"spec.source.{key}" for key in ("chart", "helm", "plugin") if source.get(key)]
        directory = _mapping(source.get("directory"), "spec.source.directory")
        unsupported += [f"spec.source.directory.{key}" for key in directory if key != "recurse" and directory[key]]
        kustomize = _mapping(source.get("kustomize"), "spec.source.kustomize")
        known = {
            "images",
            "namePrefix",
            "nameSuffix",
            "commonLabels",
            "commonAnnotations",
            "forceCommonLabels",
            "forceCommonAnnotations",
        }
        unsupported += [f"spec.source.kustomize.{key}" for key in kustomize if key not in known and kustomize[key]]
        if unsupported:
            raise RenderError(
                f"{', '.join(unsupported)}: not supported (funade renders plain manifest directories and Kustomize "
                "with images, namePrefix, nameSuffix, commonLabels and commonAnnotations)"
            )
        images = kustomize.get("images") or []
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise RenderError("spec.source.kustomize.images must be a list of strings")
        return cls(
            repo_url=repo,
            path=str(source.get("path") or "."),
            directory_recurse=bool(directory.get("recurse", False)),
            images=tuple(images),
            name_prefix=str(kustomize.get("namePrefix") or ""),
            name_suffix=str(kustomize.get("nameSuffix") or ""),
            common_labels=_mapping(kustomize.get("commonLabels"), "spec.source.kustomize.commonLabels"),
            common_annotations=_mapping(kustomize.get("commonAnnotations"), "spec.source.kustomize.commonAnnotations"),
            force_common_labels=bool(kustomize.get("forceCommonLabels", False)),
            force_common_annotations=bool(kustomize.get("forceCommonAnnotations", False)),
        )


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError(f"{where} must be a mapping")
    return {str(k): v for k, v in value.items()}


@dataclass(frozen=True)
class Rendered:
    """The objects an app's source renders to at one commit.

    Attributes:
        objects: the objects in source order; ``[]`` when the source renders nothing
            (the caller decides, as with Argo CD's ``allowEmpty``, whether that may sync).
        deps: repository paths the render read: ``"a/b"`` is a file or a whole
            directory, ``"a/*"`` the files directly in ``a`` (``"*"`` at the root),
            ``"."`` everything, :data:`REMOTE` something outside the repository.
        commit: the commit rendered.
        path: the app directory.
        source_type: kustomize or plain directory.
        skipped: files passed over as not being manifests, with why.
    """

    objects: list[Obj]
    deps: frozenset[str]
    commit: str
    path: str
    source_type: SourceType
    skipped: tuple[str, ...] = ()


def affected(deps: Iterable[str], changed: Iterable[str]) -> bool:
    """Whether a push that changed the paths ``changed`` can change a render that read ``deps``."""
    dep_set = set(deps)
    if REMOTE in dep_set or "." in dep_set:
        return True
    children = {"" if dep == "*" else dep[:-2] for dep in dep_set if dep == "*" or dep.endswith("/*")}
    prefixes = dep_set - {"*"} - {f"{parent}/*" for parent in children}
    for path in changed:
        if posixpath.dirname(path) in children:
            return True
        if path in prefixes or any(parent in prefixes for parent in _parents(path)):
            return True
    return False


def _parents(path: str) -> Iterator[str]:
    """``a/b/c`` → ``a/b``, ``a`` (never the root)."""
    parent = posixpath.dirname(path)
    while parent and parent != path:
        yield parent
        path, parent = parent, posixpath.dirname(parent)


class Renderer:
    """Renders app sources at commits, remembering the last ``cache_size`` results.

    Args:
        source: gives the tree of a commit (``GitSource``, ``FakeGitSource``).
        kustomize: builds a kustomization directory into YAML text and raises on failure
            (``funade.adapters.kustomize.render``); without it a kustomization is an error.
        cache_size: how many renders to keep (LRU); 0 turns the cache off.
        work_dir: where temporary copies for overrides go; on the source's filesystem,
            files are hard-linked instead of copied.

    Attributes:
        renders: renders performed (cache misses that produced a result or an error).
        hits: renders answered from the cache.
    """

    def __init__(
        self,
        source: Checkouts,
        *,
        kustomize: Callable[[Path], str] | None = None,
        cache_size: int = 512,
        work_dir: Path | None = None,
    ) -> None:
        self._source = source
        self._kustomize = kustomize
        self._cache_size = cache_size
        self._work_dir = work_dir
        self._cache: OrderedDict[tuple[RenderSpec, str], Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0
        self.hits = 0

    def render(self, spec: RenderSpec, commit: str, *, refresh: bool = False) -> Rendered:
        """The objects ``spec`` renders to at ``commit`` (a full SHA), from the cache when possible.

        Each call returns its own copy of the objects, so callers may modify them.

        Args:
            spec: what to render.
            commit: the full commit SHA (resolve branches with the source first).
            refresh: render again even when cached (Argo CD's hard refresh), e.g. for
                apps with :data:`REMOTE` dependencies.

        Raises:
            ValueError: ``commit`` is not a full SHA.
            RenderError: the app path is missing, a manifest is invalid, or kustomize failed.
            Exception: whatever the source raises when it cannot check out the commit
                (``SourceError``), unchanged.
        """
        if not _FULL_SHA.fullmatch(commit):
            raise ValueError(f"commit must be a full SHA, not {commit!r}")
        key = (spec, commit)
        if not refresh:
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    self.hits += 1
                    return _copy(cached)
        with self._lock:
            self.renders += 1
        rendered = self._render(spec, commit)
        if self._cache_size > 0:
            with self._lock:
                self._cache[key] = rendered
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return _copy(rendered)

    def clear(self) -> None:
        """Forget every cached render."""
        with self._lock:
            self._cache.clear()

    def _render(self, spec: RenderSpec, commit: str) -> Rendered:
        tree = self._source.checkout(spec.repo_url, commit)
        app_dir = tree / spec.path
        where = f"app path {spec.path} at {commit[:12]}"
        if not app_dir.is_dir() or not _inside(app_dir, tree):
            raise RenderError(f"{where}: no such directory in the repository")
        if _kustomization_file(app_dir) is not None:
            objects, deps = self._render_kustomize(tree, spec, where)
            return Rendered(objects, deps, commit, spec.path, SourceType.KUSTOMIZE)
        objects, deps, skipped = _render_directory(tree, spec, where)
        return Rendered(objects, deps, commit, spec.path, SourceType.DIRECTORY, skipped)

    def _render_kustomize(self, tree: Path, spec: RenderSpec, where: str) -> tuple[list[Obj], frozenset[str]]:
        if self._kustomize is None:
            raise RenderError(f"{where}: is a kustomization, and no kustomize is configured")
        deps = kustomize_dependencies(tree, spec.path)
        if not spec.has_kustomize_overrides:
            text = self._build(tree / spec.path, (tree,), where)
        else:
            with tempfile.TemporaryDirectory(prefix="funade-render-", dir=self._work_dir) as temp:
                work = Path(temp) / "repo"
                shutil.copytree(tree, work, symlinks=True, copy_function=_link_or_copy)
                app_dir = work / spec.path
                name = _kustomization_file(app_dir)
                assert name is not None  # the original has one
                kfile = app_dir / name
                display = posixpath.join(spec.path, name) if spec.path != "." else name
                try:
                    data = yaml.safe_load(kfile.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    raise RenderError(f"{where}: {display}: cannot be read: {exc}") from exc
                if data is None:
                    data = {}
                if not isinstance(data, dict):
                    raise RenderError(f"{where}: {display}: a kustomization must be a mapping")
                try:
                    edited = edit_kustomization(data, spec)
                except ValueError as exc:
                    raise RenderError(f"{where}: {display}: {exc}") from exc
                kfile.unlink()  # a hard link to the cached tree: replace, never write through
                kfile.write_text(yaml.safe_dump(edited, sort_keys=False), encoding="utf-8")
                text = self._build(app_dir, (work, tree), where)
        try:
            documents = load_documents(text, f"{spec.path} (kustomize)")
        except ManifestError as exc:
            raise RenderError(f"{where}: {exc}") from exc
        return [doc.obj for doc in documents], deps

    def _build(self, app_dir: Path, roots: Sequence[Path], where: str) -> str:
        assert self._kustomize is not None
        try:
            return self._kustomize(app_dir)
        except Exception as exc:  # the adapter's error type is not the engine's to import
            message = _WARNING.sub("", str(exc)).strip() or str(exc)
            for root in roots:
                message = message.replace(f"{root}{os.sep}", "").replace(str(root), ".")
            if len(message) > _ERROR_CHARS:
                message = "…" + message[-(_ERROR_CHARS - 1) :]
            raise RenderError(f"{where}: kustomize build failed: {message}") from exc


def _copy(rendered: Rendered) -> Rendered:
    return Rendered(
        objects=copy.deepcopy(rendered.objects),
        deps=rendered.deps,
        commit=rendered.commit,
        path=rendered.path,
        source_type=rendered.source_type,
        skipped=rendered.skipped,
    )


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a file of the read-only tree into the work copy; copy across filesystems."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _kustomization_file(directory: Path) -> str | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return name
    return None


# --- plain directories ---------------------------------------------------------------


def _render_directory(tree: Path, spec: RenderSpec, where: str) -> tuple[list[Obj], frozenset[str], tuple[str, ...]]:
    root = tree / spec.path
    objects: list[Obj] = []
    skipped: list[str] = []
    deps = {spec.path if spec.directory_recurse else _children(spec.path)}
    for rel in _manifest_files(root, spec.directory_recurse):
        source = rel if spec.path == "." else posixpath.join(spec.path, rel)
        path = root / rel
        if path.is_symlink():
            if not path.exists():
                skipped.append(f"{source}: the symlink's target is missing")
                continue
            if not _inside(path, tree):
                raise RenderError(f"{where}: {source}: symlink points outside the repository")
            deps.add(path.resolve().relative_to(tree.resolve()).as_posix())
        if not path.is_file():
            skipped.append(f"{source}: not a regular file")
            continue
        if rel.endswith(".jsonnet"):
            raise RenderError(f"{where}: {source}: jsonnet is not supported")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RenderError(f"{where}: {source}: cannot be read: {exc}") from exc
        try:
            documents = load_documents(text, source)
        except ManifestError as exc:
            if rel.endswith(".json") or _looks_like_manifest(text):
                raise RenderError(f"{where}: {exc}") from exc
            skipped.append(f"{source}: not a Kubernetes manifest ({exc.message})")
            continue
        objects.extend(doc.obj for doc in documents)
    return objects, frozenset(deps), tuple(skipped)


def _children(directory: str) -> str:
    return "*" if directory == "." else f"{directory}/*"


def _manifest_files(root: Path, recurse: bool) -> list[str]:
    """Manifest file paths under ``root`` in the order Go's ``filepath.Walk`` visits them."""
    found: list[tuple[str, ...]] = []
    for directory, dirnames, filenames in os.walk(root):
        if not recurse:
            dirnames.clear()
        rel = Path(directory).relative_to(root).parts
        found.extend((*rel, name) for name in filenames if _MANIFEST_FILE.match(name))
    return ["/".join(parts) for parts in sorted(found)]


def _looks_like_manifest(text: str) -> bool:
    """Argo CD's test for a file that should have parsed: it names apiVersion, kind and metadata."""
    return "apiVersion:" in text and "kind:" in text and "metadata:" in text


# --- kustomize overrides ---------------------------------------------------------------


def edit_kustomization(kustomization: Mapping[str, Any], spec: RenderSpec) -> dict[str, Any]:
    """The kustomization with the spec's overrides written in, as ``kustomize edit`` writes them.

    Argo CD runs ``kustomize edit set nameprefix|namesuffix|image`` and ``kustomize edit
    add label|annotation [--force]`` in the app directory; this is the same change to
    the parsed file. The input is not modified.

    Raises:
        ValueError: an image override kustomize would reject, or a label or annotation
            the kustomization already sets without the matching ``force`` flag.
    """
    data: dict[str, Any] = copy.deepcopy(dict(kustomization))
    if spec.name_prefix:
        data["namePrefix"] = spec.name_prefix
    if spec.name_suffix:
        data["nameSuffix"] = spec.name_suffix
    if spec.images:
        current = data.get("images") or []
        if not isinstance(current, list):
            raise ValueError("images must be a list")
        data["images"] = _set_images(current, spec.images)
    for field_name, kind, pairs, force in (
        ("commonLabels", "label", spec.common_labels, spec.force_common_labels),
        ("commonAnnotations", "annotation", spec.common_annotations, spec.force_common_annotations),
    ):
        if not pairs:
            continue
        existing = data.get(field_name) or {}
        if not isinstance(existing, dict):
            raise ValueError(f"{field_name} must be a mapping")
        merged = dict(existing)
        for key, value in pairs.items():
            if key in merged and not force:
                raise ValueError(
                    f"{kind} {key} already in kustomization file "
                    f"(set force{field_name[0].upper()}{field_name[1:]} to override it)"
                )
            merged[key] = value
        data[field_name] = merged
    return data


@dataclass(frozen=True)
class _Image:
    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key, value in (("newName", self.new_name), ("newTag", self.new_tag), ("digest", self.digest)):
            if value:
                out[key] = value
        out.update({k: v for k, v in self.extra.items() if k not in {"name", "newName", "newTag", "digest"}})
        return out


def _set_images(current: list[Any], args: Sequence[str]) -> list[dict[str, Any]]:
    """``kustomize edit set image ARGS…`` applied to a kustomization's ``images`` list."""
    wanted: dict[str, _Image] = {}
    for arg in args:
        image = _parse_image(arg)
        wanted[image.name] = image
    result = dict(wanted)
    for entry in current:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError("every images entry needs a name")
        old = _Image(
            name=entry["name"],
            new_name=str(entry.get("newName") or ""),
            new_tag=str(entry.get("newTag") or ""),
            digest=str(entry.get("digest") or ""),
            extra=entry,
        )
        given = wanted.get(old.name)
        if given is None:
            result[old.name] = old
            continue
        result[old.name] = _Image(
            name=given.name,
            new_name=old.new_name if given.new_name == _PRESERVE else given.new_name,
            new_tag=old.new_tag if given.new_tag == _PRESERVE else given.new_tag,
            digest=old.digest if given.digest == _PRESERVE else given.digest,
        )
    images = []
    for image in sorted(result.values(), key=lambda i: i.name):
        images.append(
            _Image(
                name=image.name,
                new_name="" if image.new_name == _PRESERVE else image.new_name,
                new_tag="" if image.new_tag == _PRESERVE else image.new_tag,
                digest="" if image.digest == _PRESERVE else image.digest,
                extra=image.extra,
            ).as_dict()
        )
    return images


def _parse_image(arg: str) -> _Image:
    """One ``kustomize edit set image`` argument (kustomize's ``parse``, same edge cases)."""
    parts = arg.split("=")
    if len(parts) == 2:
        name, tag, digest = _parse_overwrite(parts[1], overwrite_image=True, arg=arg)
        return _Image(name=parts[0], new_name=name, new_tag=tag, digest=digest)
    name, tag, digest = _parse_overwrite(arg, overwrite_image=False, arg=arg)
    return _Image(name=name, new_tag=tag, digest=digest)


def _parse_overwrite(text: str, *, overwrite_image: bool, arg: str) -> tuple[str, str, str]:
    if "@" in text:
        name, digest = text.split("@")[:2]
        return name, "", digest
    match = _IMAGE_TAG.match(text)
    if match:
        return match[1], match[2], ""
    if text and overwrite_image:
        return text, "", ""
    raise ValueError(
        f"invalid image override {arg!r}: use <image>=<newimage>:<newtag>, <image>=<newimage>@<digest>, "
        "<image>=<newimage>, <image>:<newtag> or <image>@<digest>"
    )


# --- dependencies ----------------------------------------------------------------------


def kustomize_dependencies(tree: Path, app_path: str) -> frozenset[str]:
    """Repository paths a kustomize build of ``app_path`` reads, found by following its kustomizations.

    Each kustomization directory counts whole (kustomize only loads files from inside
    it unless told otherwise); resources, bases and components are followed into other
    directories; files named outside it are listed one by one; remote resources and
    Helm charts add :data:`REMOTE`.
    """
    deps: set[str] = set()
    seen: set[str] = set()
    pending = [app_path]
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        deps.add(directory)
        name = _kustomization_file(tree / directory)
        if name is None:
            continue
        try:
            data = yaml.safe_load((tree / directory / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the build reports it
        if not isinstance(data, dict):
            continue
        if data.get("helmCharts"):
            deps.add(REMOTE)
        for ref in _references(data):
            if "://" in ref or ref.startswith("git@"):
                deps.add(REMOTE)
                continue
            target = posixpath.normpath(posixpath.join(directory, ref))
            if target == ".." or target.startswith("../"):
                continue  # outside the repository: kustomize refuses it
            if (tree / target).is_dir():
                pending.append(target)
            elif not (tree / target).exists() and _looks_remote(ref):
                deps.add(REMOTE)  # github.com/org/repo//path?ref=v1
            else:
                deps.add(target)  # a file, or a missing one whose arrival must re-render
    return frozenset(_minimal(deps))


def _references(data: Mapping[str, Any]) -> Iterator[str]:
    """Every path a kustomization names (inline patches and generator literals excluded)."""
    for key in _PATH_LISTS:
        yield from _strings(data.get(key))
    for item in _strings(data.get("patchesStrategicMerge")):
        if "\n" not in item:
            yield item
    for key in _PATH_ITEMS:
        for item in _list(data.get(key)):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"]
    for key in _GENERATORS:
        for item in _list(data.get(key)):
            if not isinstance(item, dict):
                continue
            for entry in _strings(item.get("files")):
                yield entry.split("=", 1)[-1]
            yield from _strings(item.get("envs"))
            if isinstance(item.get("env"), str):
                yield item["env"]
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield openapi["path"]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str) and item]


def _looks_remote(ref: str) -> bool:
    """``host.tld/org/repo…`` as kustomize accepts for remote bases."""
    first = ref.split("/", 1)[0]
    return "/" in ref and "." in first and first not in {".", ".."}


def _minimal(deps: set[str]) -> set[str]:
    """Drop paths already covered by a directory dependency."""
    if "." in deps:
        return {"."} | ({REMOTE} & deps)
    return {dep for dep in deps if dep == REMOTE or not any(parent in deps for parent in _parents(dep))}
