"""The OCI model: image references, digests, descriptors and manifests, as values.

Promotion, retagging, cleanup and the registry client all reason about the same few
things (a reference a user typed, a digest a registry answered, the manifest bytes
that must be copied byte for byte), so they live here, pure and typed. Parsing
follows the distribution reference grammar and the OCI image and distribution specs;
Docker's v2 schema 2 manifests and manifest lists are read as the OCI shapes they
mirror. Docker v2 schema 1 is refused: nothing current produces it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_HUB",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "EMPTY_DIGEST",
    "EMPTY_JSON",
    "IMAGE_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Descriptor",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidReference",
    "Manifest",
    "Platform",
    "Reference",
    "as_referrer",
    "blobs_of",
    "children_of",
    "digest_of",
    "index_bytes",
    "parse_manifest",
    "parse_reference",
    "referrers_tag",
    "validate_digest",
    "validate_repository",
    "validate_tag",
]

# -- media types ------------------------------------------------------------------------------

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
#: Docker v2 schema 1, which funade refuses.
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
#: The config of an artifact that has none (OCI image spec "empty descriptor").
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = IMAGE_MEDIA_TYPES | INDEX_MEDIA_TYPES
#: What a client accepts when it asks for a manifest, most preferred first.
MANIFEST_ACCEPT: tuple[str, ...] = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

# Content types that say nothing about which manifest a body is.
_GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})


# -- errors -----------------------------------------------------------------------------------


class InvalidReference(ValueError):
    """An image reference that does not follow the distribution grammar."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"invalid image reference {text!r}: {problem}")
        self.text = text
        self.problem = problem


class InvalidDigest(ValueError):
    """A content digest that is malformed, or does not match the content."""


class InvalidManifest(ValueError):
    """Manifest bytes that are not an OCI/Docker v2 manifest or index funade can read."""


# -- digests ----------------------------------------------------------------------------------

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_RE = re.compile(r"^[a-f0-9]+$")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


def validate_digest(digest: str) -> str:
    """Return ``digest`` when it is well formed (``algorithm:encoded``), else raise `InvalidDigest`.

    sha256 and sha512 must carry exactly their lowercase hex length; other algorithms
    only have to follow the grammar (the spec lets registries know more than we do).
    """
    if not _DIGEST_RE.match(digest):
        raise InvalidDigest(f"invalid digest {digest!r}: expected algorithm:hex, e.g. sha256:<64 hex digits>")
    algorithm, _, encoded = digest.partition(":")
    length = _HEX_LENGTHS.get(algorithm)
    if length is not None and (len(encoded) != length or not _HEX_RE.match(encoded)):
        raise InvalidDigest(f"invalid digest {digest!r}: {algorithm} takes {length} lowercase hex digits")
    return digest


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The content digest of ``data`` (sha256 unless told; sha512 also works)."""
    if algorithm not in _HEX_LENGTHS:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}: funade computes sha256 and sha512")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# -- references -------------------------------------------------------------------------------

#: Docker Hub's canonical registry name in references.
DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_NAME_MAX = 255
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: ``registry/repository[:tag][@digest]``.

    ``str()`` gives the canonical, fully qualified form, which parses back to an equal value.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest, else the tag, else ``latest``."""
        return self.digest or self.tag or "latest"


def validate_repository(repository: str) -> str:
    """Return ``repository`` (a path such as ``team/app``) when valid, else raise `InvalidReference`."""
    if not repository:
        raise InvalidReference(repository, "the repository name is empty")
    if repository != repository.lower():
        raise InvalidReference(repository, f"repository name {repository!r} must be lowercase")
    for component in repository.split("/"):
        if not _COMPONENT_RE.match(component):
            raise InvalidReference(
                repository,
                f"invalid repository path component {component!r}: lowercase letters and digits, "
                "separated by '.', '_', '__' or dashes",
            )
    return repository


def validate_tag(tag: str) -> str:
    """Return ``tag`` when valid, else raise `InvalidReference`."""
    if not _TAG_RE.match(tag):
        raise InvalidReference(
            tag, f"invalid tag {tag!r}: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    return tag


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str, default_registry: str | None = None) -> Reference:
    """Parse an image reference the way Docker and the distribution project do.

    A first path component containing ``.`` or ``:``, or equal to ``localhost``, is the
    registry. Without one the image lives on ``default_registry`` when given, else on
    Docker Hub (``docker.io``), where a single-component name gains ``library/``.

    Raises:
        InvalidReference: naming the text and what is wrong with it.
    """
    if not text:
        raise InvalidReference(text, "it is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(text, "it contains whitespace")
    rest, at, digest = text.partition("@")
    if at:
        try:
            validate_digest(digest)
        except InvalidDigest as exc:
            raise InvalidReference(text, str(exc)) from None
    tag: str | None = None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        try:
            validate_tag(tag)
        except InvalidReference as exc:
            raise InvalidReference(text, exc.problem) from None
    first, sep, remainder = rest.partition("/")
    if sep and _is_registry(first):
        registry, repository = first, remainder
    else:
        registry, repository = default_registry or DOCKER_HUB, rest
        if default_registry is not None and not _REGISTRY_RE.match(default_registry):
            raise InvalidReference(text, f"invalid default registry {default_registry!r}")
    if not _REGISTRY_RE.match(registry):
        raise InvalidReference(text, f"invalid registry {registry!r}")
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    try:
        validate_repository(repository)
    except InvalidReference as exc:
        raise InvalidReference(text, exc.problem) from None
    if len(registry) + 1 + len(repository) > _NAME_MAX:
        raise InvalidReference(text, f"the name is longer than {_NAME_MAX} characters")
    return Reference(registry, repository, tag, digest if at else None)


# -- descriptors and manifests ----------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """Where an index child runs: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True)
class Descriptor:
    """Points at content by media type, digest and size (OCI image spec, descriptor.md)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    artifact_type: str | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The descriptor as it is written in a manifest."""
        out: dict[str, object] = {"mediaType": self.media_type}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["digest"] = self.digest
        out["size"] = self.size
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest or an index, with the exact bytes it was read from.

    ``raw`` is what must be copied: re-serialising would change the digest.
    """

    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def is_index(self) -> bool:
        """Whether this lists other manifests (an OCI index or a Docker manifest list)."""
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self) -> Descriptor:
        """A descriptor of this manifest (media type, digest, size)."""
        return Descriptor(self.media_type, self.digest, len(self.raw))


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise InvalidManifest(f"{where}: expected a JSON object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _string(obj: Mapping[str, object], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidManifest(f"{where}: {key} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidManifest(f"{where}: {key} must be a string")
    return value


def _annotations(obj: Mapping[str, object], where: str) -> dict[str, str]:
    value = obj.get("annotations")
    if value is None:
        return {}
    raw = _object(value, f"{where}.annotations")
    if not all(isinstance(v, str) for v in raw.values()):
        raise InvalidManifest(f"{where}.annotations: values must be strings")
    return {k: str(v) for k, v in raw.items()}


def _platform(value: object, where: str) -> Platform | None:
    if value is None:
        return None
    obj = _object(value, where)
    features = obj.get("os.features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidManifest(f"{where}: os.features must be a list of strings")
    return Platform(
        os=_string(obj, "os", where, required=True) or "",
        architecture=_string(obj, "architecture", where, required=True) or "",
        variant=_string(obj, "variant", where),
        os_version=_string(obj, "os.version", where),
        os_features=tuple(str(f) for f in features),
    )


def _descriptor(value: object, where: str) -> Descriptor:
    obj = _object(value, where)
    media_type = _string(obj, "mediaType", where, required=True) or ""
    digest = _string(obj, "digest", where, required=True) or ""
    try:
        validate_digest(digest)
    except InvalidDigest as exc:
        raise InvalidManifest(f"{where}: {exc}") from None
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifest(f"{where}: size must be a non-negative integer")
    urls = obj.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InvalidManifest(f"{where}: urls must be a list of strings")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_annotations(obj, where),
        artifact_type=_string(obj, "artifactType", where),
        platform=_platform(obj.get("platform"), f"{where}.platform"),
        urls=tuple(str(u) for u in urls),
    )


def _descriptors(obj: Mapping[str, object], key: str, required: bool) -> tuple[Descriptor, ...]:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidManifest(f"{key} is missing")
        return ()
    if not isinstance(value, list):
        raise InvalidManifest(f"{key} must be a list of descriptors")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value))


def _media_type_of(header: str | None, body: Mapping[str, object]) -> str:
    declared = (header or "").split(";", 1)[0].strip().lower()
    inside = body.get("mediaType")
    if inside is not None and not isinstance(inside, str):
        raise InvalidManifest("mediaType must be a string")
    if declared in DOCKER_SCHEMA1 or inside in DOCKER_SCHEMA1 or body.get("schemaVersion") == 1:
        raise InvalidManifest(
            "Docker image manifest v2 schema 1 is not supported (deprecated since 2017): "
            "push the image again with a current Docker or buildkit"
        )
    if declared in _GENERIC_TYPES:
        if inside:
            declared = inside
        elif "manifests" in body:
            declared = OCI_INDEX
        elif "config" in body or "layers" in body:
            declared = OCI_MANIFEST
        else:
            raise InvalidManifest("cannot tell the manifest's media type: no Content-Type and no mediaType")
    elif inside and inside != declared:
        raise InvalidManifest(f"the Content-Type says {declared} but the body's mediaType is {inside}")
    if declared not in MANIFEST_MEDIA_TYPES:
        raise InvalidManifest(
            f"unsupported manifest media type {declared!r}: expected one of {', '.join(MANIFEST_ACCEPT)}"
        )
    return declared


def parse_manifest(raw: bytes, media_type: str | None = None) -> Manifest:
    """Read manifest bytes as a registry served them.

    Args:
        raw: The body, kept unchanged in the result.
        media_type: The Content-Type the registry sent. When missing or generic
            (``application/json``) the body's ``mediaType`` decides, then its shape.

    Raises:
        InvalidManifest: not JSON, schema 1, an unknown media type, or a malformed field.
    """
    try:
        value: object = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifest(f"the manifest is not JSON: {exc}") from None
    body = _object(value, "manifest")
    kind = _media_type_of(media_type, body)
    if body.get("schemaVersion") != 2:
        raise InvalidManifest(f"schemaVersion must be 2, got {body.get('schemaVersion')!r}")
    subject = body.get("subject")
    is_index = kind in INDEX_MEDIA_TYPES
    return Manifest(
        media_type=kind,
        digest=digest_of(raw),
        raw=raw,
        config=None if is_index else _descriptor(body.get("config"), "config"),
        layers=() if is_index else _descriptors(body, "layers", required=kind == DOCKER_MANIFEST),
        manifests=_descriptors(body, "manifests", required=True) if is_index else (),
        subject=None if subject is None else _descriptor(subject, "subject"),
        artifact_type=_string(body, "artifactType", "manifest"),
        annotations=_annotations(body, "manifest"),
    )


def blobs_of(manifest: Manifest) -> tuple[Descriptor, ...]:
    """The blobs an image manifest needs in its repository: config, then layers.

    Layers that carry ``urls`` (foreign, non-distributable) live elsewhere and are left out.
    An index has no blobs of its own.
    """
    if manifest.config is None:
        return ()
    return (manifest.config, *(layer for layer in manifest.layers if not layer.urls))


def children_of(manifest: Manifest) -> tuple[Descriptor, ...]:
    """The manifests an index lists (empty for an image manifest)."""
    return manifest.manifests


def as_referrer(manifest: Manifest) -> Descriptor:
    """The descriptor a referrers list holds for ``manifest``.

    Its artifactType is the manifest's own, else its config's media type; its
    annotations are copied (distribution spec, "Listing Referrers").
    """
    artifact_type = manifest.artifact_type or (manifest.config.media_type if manifest.config else None)
    return Descriptor(
        manifest.media_type, manifest.digest, len(manifest.raw), dict(manifest.annotations), artifact_type
    )


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for a subject: ``<alg>-<encoded>`` (truncated to 32 and 64)."""
    algorithm, _, encoded = validate_digest(digest).partition(":")
    tag = f"{algorithm[:32]}-{encoded[:64]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", tag)


def index_bytes(manifests: Iterable[Descriptor], annotations: Mapping[str, str] | None = None) -> bytes:
    """Serialise an OCI image index listing ``manifests``."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.to_json() for d in manifests],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    return json.dumps(body, separators=(",", ":")).encode()
