"""Cataloguing an image in a registry or in the local engine: which packages its layers leave installed,
and which layer added each.

Layers are read the way a container runtime stacks them: in order, each one's whiteouts
(``.wh.NAME``, and ``.wh..wh..opq`` for a whole directory) hiding what the layers below
put there, a file in an upper layer replacing the one below. Only the files a cataloguer
needs are kept (package databases, Python/npm metadata, ``os-release``, jars, Go
binaries), and they are parsed as soon as they are read, so memory holds package lists
rather than file contents.

Each layer blob is streamed once: the registry's chunks feed ``tarfile`` in stream mode
(gzip, bzip2, xz and zstd are recognised from the bytes, whatever the media type says) in a
worker thread that pulls chunks from the event loop, so nothing is buffered beyond a
chunk. The exceptions are jars, which ``zipfile`` must seek: each is copied to a
`tempfile.SpooledTemporaryFile` that stays in memory up to 64 MiB. After the tar's end
the rest of the blob is drained so the client still checks its digest.

An image in the local Docker Engine (never pushed) is read the same way from the tar
``docker save`` writes (``GET /images/{name}/get`` through :class:`LocalImages`), in one
pass: the tar nests each layer as a member (``ID/layer.tar``, or ``blobs/sha256/…`` in
the OCI layout Docker 25 writes), so each is walked as it streams by, and the order is
applied once ``manifest.json``, usually last, says it. Layers are then named by their
digest in the engine: the blob's in an OCI layout, else the config's ``diff_ids``.

Attribution: a package belongs to the layer that last wrote its metadata file, except
for dpkg and apk databases, which every ``apt-get install`` rewrites whole: there a
package keeps the layer it first appeared in for as long as the same name, version and
architecture stay installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Protocol, TypeVar

from funade.core import oci, sbom
from funade.core.ports import Registry

try:  # Python 3.14 has zstd in the standard library; before, its backport
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

__all__ = ["LocalImages", "SbomError", "catalogue", "catalogue_local"]

_T = TypeVar("_T")
_CHUNK = 1 << 20
_JAR_IN_MEMORY = 64 << 20
#: How much of a Go binary after the build-info magic is handed to the parser.
_GO_WINDOW = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_DATABASES = (sbom.FileKind.DPKG_STATUS, sbom.FileKind.APK_INSTALLED)
#: Files of a ``docker save`` tar kept in memory (manifest.json, the image config): at most this big.
_SAVED_FILE_MAX = 16 << 20


class LocalImages(Protocol):
    """A local container engine's images, as ``docker save`` writes them (the Docker adapter's client)."""

    def export_image(self, ref: str) -> AsyncGenerator[bytes, None]:
        """Stream one image as a ``docker save`` tar (``contextlib.aclosing`` it)."""
        ...


class SbomError(Exception):
    """The image cannot be catalogued (no such platform, not an image, an unreadable layer)."""


@dataclass(frozen=True)
class _Found:
    """What one kept file said: its packages (already attributed to a layer), or the distro."""

    kind: sbom.FileKind | None  # None: a Go binary
    packages: tuple[sbom.Package, ...] = ()
    distro: sbom.Distro | None = None


@dataclass
class _LayerScan:
    """One layer's changes: what it hides, what it replaces, and the files it adds."""

    opaque: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    replaced: set[str] = field(default_factory=set)  # non-directory entries: hide anything below them
    directories: set[str] = field(default_factory=set)
    found: dict[str, _Found] = field(default_factory=dict)


# -- reading a blob from a worker thread ----------------------------------------------------------


class _Readable(Protocol):
    """What a layer walk reads from: a blob from the registry, or a layer member of a saved image."""

    def peek(self, size: int, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


class _BlobReader:
    """A blocking, file-like view of an async chunk stream, for use from a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buffer = bytearray()
        self._eof = False

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def _fill(self, size: int) -> None:
        while not self._eof and len(self._buffer) < size:
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            if chunk is None:
                self._eof = True
            else:
                self._buffer += chunk

    def peek(self, size: int) -> bytes:
        self._fill(size)
        return bytes(self._buffer[:size])

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            while not self._eof:
                self._fill(len(self._buffer) + _CHUNK)
            size = len(self._buffer)
        else:
            self._fill(size)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


async def _walk(chunks: AsyncGenerator[bytes, None], walk: Callable[[_Readable], _T]) -> _T:
    """Run ``walk`` over a chunk stream in a worker thread; the stream is closed after."""
    async with contextlib.aclosing(chunks):
        return await asyncio.to_thread(walk, _BlobReader(chunks, asyncio.get_running_loop()))


# -- one layer ------------------------------------------------------------------------------------


def _find_go_buildinfo(stream: IO[bytes], head: bytes) -> sbom.GoBuildInfo | None:
    """Search a whole executable, chunk by chunk, for a 16-byte-aligned Go build-info header."""
    magic = sbom.GO_BUILDINFO_MAGIC
    buffer, offset, eof = head, 0, False
    while True:
        chunk = stream.read(_CHUNK)
        eof = not chunk
        buffer += chunk
        at = buffer.find(magic)
        while at != -1:
            if (offset + at) % 16 == 0:
                while not eof and len(buffer) - at < _GO_WINDOW:
                    more = stream.read(_CHUNK)
                    eof = not more
                    buffer += more
                info = sbom.parse_go_buildinfo(buffer[at : at + _GO_WINDOW])
                if info is not None:
                    return info
            at = buffer.find(magic, at + 1)
        if eof:
            return None
        drop = max(0, len(buffer) - (len(magic) - 1))
        offset += drop
        buffer = buffer[drop:]


def _parse(kind: sbom.FileKind, path: str, data: bytes) -> _Found:
    text = data.decode("utf-8", "replace")
    packages: list[sbom.Package] = []
    if kind is sbom.FileKind.DPKG_STATUS:
        packages = sbom.parse_dpkg_status(text, path)
    elif kind is sbom.FileKind.DPKG_STATUS_D:
        packages = sbom.parse_dpkg_status(text, path, assume_installed=True)
    elif kind is sbom.FileKind.APK_INSTALLED:
        packages = sbom.parse_apk_installed(text, path)
    elif kind is sbom.FileKind.OS_RELEASE:
        return _Found(kind, distro=sbom.parse_os_release(text))
    elif kind is sbom.FileKind.PYTHON_METADATA:
        packages = [p for p in [sbom.parse_python_metadata(text, path)] if p is not None]
    elif kind is sbom.FileKind.NPM_PACKAGE:
        packages = [p for p in [sbom.parse_package_json(data, path)] if p is not None]
    return _Found(kind, tuple(packages))


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> _Found | None:
    kind = sbom.classify(path)
    stream = tar.extractfile(member)
    if stream is None:
        return None
    with stream:
        if kind is sbom.FileKind.JAR:
            with tempfile.SpooledTemporaryFile(max_size=_JAR_IN_MEMORY) as spool:
                shutil.copyfileobj(stream, spool, _CHUNK)
                spool.seek(0)
                return _Found(kind, tuple(sbom.parse_jar(spool, path)))
        if kind is not None:
            return _parse(kind, path, stream.read())
        if member.mode & 0o111 and member.size > len(sbom.GO_BUILDINFO_MAGIC):
            head = stream.read(4)
            if head != b"\x7fELF":
                return None
            info = _find_go_buildinfo(stream, head)
            if info is not None:
                return _Found(None, tuple(sbom.go_packages(info, path)))
    return None


def _scan_layer(reader: _Readable, digest: str) -> _LayerScan:
    """Walk one layer tar (in the worker thread): whiteouts, replacements and the files catalogers want."""
    # tarfile knows zstd only from Python 3.14 on: a zstd layer (OCI ``tar+zstd``) is unpacked here.
    zstd_layer = reader.peek(4)[:4] == _ZSTD_MAGIC
    tar_input = zstd.ZstdFile(reader, mode="rb") if zstd_layer else reader
    scan = _LayerScan()
    try:
        with tarfile.open(fileobj=tar_input, mode="r|" if zstd_layer else "r|*") as tar:  # type: ignore[call-overload]
            for member in tar:
                path = sbom.normalize_path(member.name)
                if not path:
                    continue
                parent, _, base = path.rpartition("/")
                if base == _OPAQUE:
                    scan.opaque.add(parent)
                    continue
                if base.startswith(_WHITEOUT):
                    scan.whiteouts.add(f"{parent}/{base[len(_WHITEOUT) :]}".lstrip("/"))
                    continue
                if member.isdir():
                    scan.directories.add(path)
                    continue
                scan.replaced.add(path)
                scan.found.pop(path, None)
                if member.islnk():
                    target = scan.found.get(sbom.normalize_path(member.linkname))
                    if target is not None:
                        scan.found[path] = _Found(
                            target.kind, tuple(replace(p, path=path) for p in target.packages), target.distro
                        )
                    continue
                if not member.isreg():
                    continue
                found = _read_member(tar, member, path)
                if found is not None:
                    scan.found[path] = _Found(
                        found.kind, tuple(replace(p, layer=digest) for p in found.packages), found.distro
                    )
        while reader.read(_CHUNK):  # past the tar's end: a registry client checks the digest at the last byte
            pass
    except (tarfile.TarError, EOFError, OSError, zstd.ZstdError) as exc:
        raise SbomError(f"cannot read layer {digest}: {exc}") from exc
    return scan


# -- stacking layers ------------------------------------------------------------------------------


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _hidden(path: str, scan: _LayerScan) -> bool:
    """Whether ``path`` from a lower layer is hidden by ``scan``'s layer."""
    if path in scan.whiteouts or path in scan.replaced or path in scan.directories:
        return True
    if "" in scan.opaque:
        return True
    return any(a in scan.opaque or a in scan.whiteouts or a in scan.replaced for a in _ancestors(path))


def _keep_layers(previous: _Found | None, found: _Found) -> _Found:
    """A rewritten package database: unchanged packages keep the layer that first installed them."""
    if previous is None:
        return found
    earlier = {(p.name, p.version, p.arch): p.layer for p in previous.packages}
    packages = tuple(replace(p, layer=earlier.get((p.name, p.version, p.arch), p.layer)) for p in found.packages)
    return replace(found, packages=packages)


def _apply(state: dict[str, _Found], scan: _LayerScan) -> None:
    previous = {path: state[path] for path in scan.found if path in state}
    for path in [p for p in state if _hidden(p, scan)]:
        del state[path]
    for path, found in scan.found.items():
        state[path] = _keep_layers(previous.get(path), found) if found.kind in _DATABASES else found


# -- the image ------------------------------------------------------------------------------------


def _matches(platform: oci.Platform | None, wanted: str) -> bool:
    if platform is None:
        return False
    os_name, _, rest = wanted.partition("/")
    arch, _, variant = rest.partition("/")
    return platform.os == os_name and platform.architecture == arch and (not variant or platform.variant == variant)


async def _image_manifest(registry: Registry, repository: str, reference: str, platform: str) -> oci.Manifest:
    manifest = await registry.get_manifest(repository, reference)
    for _ in range(2):  # an index of indexes is legal, if rare
        if not manifest.is_index:
            return manifest
        children = [c for c in manifest.manifests if _matches(c.platform, platform)]
        if not children:
            available = ", ".join(sorted({str(c.platform) for c in manifest.manifests if c.platform})) or "none"
            raise SbomError(f"{repository}@{manifest.digest} has no {platform} image (platforms: {available})")
        manifest = await registry.get_manifest(repository, children[0].digest)
    raise SbomError(f"{repository}:{reference}: indexes nest too deeply")


async def _blob_bytes(registry: Registry, repository: str, digest: str) -> bytes:
    data = bytearray()
    async with contextlib.aclosing(registry.open_blob(repository, digest)) as chunks:
        async for chunk in chunks:
            data += chunk
    return bytes(data)


def _platform_of(config: bytes, fallback: str) -> str:
    try:
        doc = json.loads(config)
    except ValueError:
        return fallback
    if not isinstance(doc, Mapping) or not doc.get("os") or not doc.get("architecture"):
        return fallback
    return "/".join(str(p) for p in (doc["os"], doc["architecture"], doc.get("variant")) if p)


def _distro(state: Mapping[str, _Found]) -> sbom.Distro | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        found = state.get(path)
        if found is not None and found.distro is not None:
            return found.distro
    return None


def _result(
    state: Mapping[str, _Found], *, reference: str, digest: str, platform: str, layers: tuple[str, ...]
) -> sbom.Sbom:
    """The SBOM of the stacked layers: every package left visible, its purl computed for the distro."""
    distro = _distro(state)
    packages = sbom.sort_packages(sbom.with_distro((p for f in state.values() for p in f.packages), distro))
    return sbom.Sbom(
        reference=reference, digest=digest, platform=platform, distro=distro, packages=tuple(packages), layers=layers
    )


async def catalogue(
    registry: Registry,
    repository: str,
    reference: str,
    *,
    platform: str = "linux/amd64",
    on_layer: Callable[[int, int, oci.Descriptor], None] | None = None,
) -> sbom.Sbom:
    """The packages installed in an image, each with the layer that introduced it.

    Args:
        reference: A tag or digest; an index resolves to its ``platform`` child.
        platform: ``os/arch[/variant]`` to pick from an index.
        on_layer: Called before each layer is read with its position, the layer count and its descriptor.

    Raises:
        SbomError: No such platform, not a container image, or a layer that is not a readable tar.
    """
    manifest = await _image_manifest(registry, repository, reference, platform)
    if manifest.config is None or manifest.config.media_type not in (oci.OCI_CONFIG, oci.DOCKER_CONFIG):
        raise SbomError(f"{repository}@{manifest.digest} is not a container image (no image config)")
    config = await _blob_bytes(registry, repository, manifest.config.digest)
    state: dict[str, _Found] = {}
    for index, layer in enumerate(manifest.layers):
        if on_layer is not None:
            on_layer(index, len(manifest.layers), layer)
        walk = functools.partial(_scan_layer, digest=layer.digest)
        _apply(state, await _walk(registry.open_blob(repository, layer.digest), walk))
    return _result(
        state,
        reference=f"{registry.registry}/{repository}{'@' if ':' in reference else ':'}{reference}",
        digest=manifest.digest,
        platform=_platform_of(config, platform),
        layers=tuple(layer.digest for layer in manifest.layers),
    )


# -- an image in the local engine -----------------------------------------------------------------


@dataclass
class _Saved:
    """What one pass over a ``docker save`` tar kept: small files, each layer's walk, links, unreadable layers."""

    files: dict[str, bytes] = field(default_factory=dict)
    layers: dict[str, _LayerScan] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    errors: dict[str, SbomError] = field(default_factory=dict)


def _layer_member(path: str, size: int, head: bytes) -> bool:
    """Whether a member of a saved image is a layer: ``ID/layer.tar``, or a blob that is not small JSON."""
    if path.endswith("/layer.tar"):
        return True
    return path.startswith("blobs/") and not (head == b"{" and size <= _SAVED_FILE_MAX)


def _read_saved(reader: _Readable) -> _Saved:
    """Walk a ``docker save`` tar once (in the worker thread): every layer as it passes, the small files kept."""
    saved = _Saved()
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                path = sbom.normalize_path(member.name)
                if member.issym() or member.islnk():  # Docker links a layer saved twice to its first copy
                    target = (
                        member.linkname if member.islnk() else posixpath.join(posixpath.dirname(path), member.linkname)
                    )
                    saved.links[path] = sbom.normalize_path(posixpath.normpath(target))
                    continue
                stream = tar.extractfile(member) if member.isreg() else None
                if stream is None:
                    continue
                with stream:
                    if _layer_member(path, member.size, stream.peek(1)[:1]):
                        try:
                            saved.layers[path] = _scan_layer(stream, path)
                        except SbomError as exc:  # an error only if manifest.json names it a layer
                            saved.errors[path] = exc
                    elif member.size <= _SAVED_FILE_MAX:
                        saved.files[path] = stream.read()
        while reader.read(_CHUNK):
            pass
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SbomError(f"cannot read the saved image: {exc}") from exc
    return saved


def _follow(saved: _Saved, path: str) -> str:
    seen: set[str] = set()
    while path in saved.links and path not in seen:
        seen.add(path)
        path = saved.links[path]
    return path


def _saved_file(saved: _Saved, path: str, name: str) -> tuple[bytes, object]:
    """A small file of the saved image: its bytes and what they say as JSON."""
    data = saved.files.get(_follow(saved, sbom.normalize_path(path)))
    if data is None:
        raise SbomError(f"{name}: the saved image has no {path}")
    try:
        return data, json.loads(data)
    except ValueError as exc:
        raise SbomError(f"{name}: {path} in the saved image is not JSON: {exc}") from exc


def _saved_layer(saved: _Saved, path: str, name: str) -> tuple[str, _LayerScan]:
    """A layer's walk by its ``manifest.json`` path, and the member it was read from."""
    real = _follow(saved, sbom.normalize_path(path))
    if real in saved.errors:
        raise saved.errors[real]
    if real not in saved.layers:
        raise SbomError(f"{name}: the saved image has no layer {path}")
    return real, saved.layers[real]


def _relabel(scan: _LayerScan, digest: str) -> _LayerScan:
    """The walk of a layer with its packages attributed to ``digest`` (it was walked before its digest was known)."""
    found = {
        path: replace(f, packages=tuple(replace(p, layer=digest) for p in f.packages)) for path, f in scan.found.items()
    }
    return replace(scan, found=found)


def _entry(manifest: object, name: str) -> Mapping[str, object]:
    """The ``manifest.json`` entry of the saved image (one per image; the one tagged ``name`` if several)."""
    entries = [e for e in manifest if isinstance(e, Mapping)] if isinstance(manifest, list) else []
    if not entries:
        raise SbomError(f"{name}: the saved image's manifest.json lists no image")
    tagged = [e for e in entries if name in (e.get("RepoTags") or ())]
    return tagged[0] if tagged else entries[0]


async def catalogue_local(images: LocalImages, name: str) -> sbom.Sbom:
    """The packages installed in an image of the local engine, read from ``docker save`` without a registry.

    Args:
        name: What the engine knows the image by: ``name:tag``, ``name@digest`` or an image ID.

    Returns:
        The SBOM; its digest is the image ID (the config's digest), its layers the engine's layer digests.

    Raises:
        SbomError: The saved tar is not an image the engine writes, or a layer is not a readable tar.
    """
    saved = await _walk(images.export_image(name), _read_saved)
    entry = _entry(_saved_file(saved, "manifest.json", name)[1], name)
    config_path, layer_paths = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_path, str) or not isinstance(layer_paths, list):
        raise SbomError(f"{name}: the saved image's manifest.json has no Config or Layers")
    config, config_doc = _saved_file(saved, config_path, name)
    rootfs = config_doc.get("rootfs") if isinstance(config_doc, Mapping) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_paths):
        raise SbomError(f"{name}: the image config's rootfs.diff_ids do not match the saved layers")
    state: dict[str, _Found] = {}
    digests: list[str] = []
    for path, diff_id in zip(layer_paths, diff_ids, strict=True):
        real, scan = _saved_layer(saved, str(path), name)
        digest = "sha256:" + real.rpartition("/")[2] if real.startswith("blobs/sha256/") else str(diff_id)
        digests.append(digest)
        _apply(state, _relabel(scan, digest))
    return _result(
        state,
        reference=name,
        digest=oci.digest_of(config),
        platform=_platform_of(config, "unknown"),
        layers=tuple(digests),
    )
