"""What is installed in an image, as values: packages, their purls, CycloneDX and SPDX documents.

A scanner is only as good as its package list, and the package list is only as good as
the metadata each package manager leaves behind. This module reads that metadata from
bytes it is given (dpkg and apk databases, Python distribution metadata, npm
``package.json``, Go build info inside a binary, Maven ``pom.properties`` inside a jar,
``os-release``) and writes the result as the two SBOM formats people already use. It
does no I/O: the engine walks the image layers and hands the interesting files here.

Purls follow the package-url spec: lowercase type, each namespace segment and the name,
version and qualifier values percent-encoded (``+`` becomes ``%2B``, ``:`` stays),
qualifiers sorted by key.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.parser import HeaderParser
from enum import StrEnum
from typing import IO

from funade import __version__

__all__ = [
    "GO_BUILDINFO_MAGIC",
    "Distro",
    "FileKind",
    "GoBuildInfo",
    "GoModule",
    "Package",
    "PackageType",
    "Sbom",
    "classify",
    "go_packages",
    "normalize_path",
    "parse_apk_installed",
    "parse_dpkg_status",
    "parse_go_buildinfo",
    "parse_jar",
    "parse_os_release",
    "parse_package_json",
    "parse_pom_properties",
    "parse_python_metadata",
    "purl",
    "purl_of",
    "sort_packages",
    "to_cyclonedx",
    "to_spdx",
    "with_distro",
]


class PackageType(StrEnum):
    """The ecosystems funade catalogues, named by their purl type."""

    DEB = "deb"
    APK = "apk"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"


_TYPE_ORDER = {t: i for i, t in enumerate(PackageType)}


@dataclass(frozen=True)
class Distro:
    """The operating system an image says it is (``/etc/os-release``)."""

    id: str
    version_id: str = ""
    codename: str = ""
    pretty_name: str = ""

    def __str__(self) -> str:
        release = self.version_id or self.codename
        return f"{self.id}-{release}" if release else self.id


@dataclass(frozen=True)
class Package:
    """One installed package.

    Attributes:
        name: As its ecosystem names it; Maven packages are ``groupId:artifactId``, npm
            scoped packages ``@scope/name``, Go modules their module path.
        source_name: The Debian source package or the Alpine origin, for advisories
            published per source.
        layer: The digest of the layer that introduced it.
        path: The file its metadata was read from (``jar!inner.jar`` inside archives).
    """

    name: str
    version: str
    type: PackageType
    purl: str = ""
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    layer: str | None = None
    path: str | None = None
    licenses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sbom:
    """The packages of one image (one platform), with where each came from."""

    reference: str
    digest: str
    platform: str
    distro: Distro | None
    packages: tuple[Package, ...]
    layers: tuple[str, ...] = ()


# -- purls --------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    # The purl spec: percent-encode everything but unreserved characters, and never ':'.
    return urllib.parse.quote(text, safe="").replace("%3A", ":")


def purl(
    type_: str,
    name: str,
    version: str | None = None,
    *,
    namespace: str | None = None,
    qualifiers: Mapping[str, str | None] | None = None,
) -> str:
    """Build a canonical package URL (``pkg:type/namespace/name@version?qualifiers``)."""
    out = f"pkg:{type_.lower()}/"
    if namespace:
        out += "/".join(_quote(s) for s in namespace.strip("/").split("/") if s) + "/"
    out += _quote(name)
    if version:
        out += "@" + _quote(version)
    pairs = sorted((k.lower(), v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        out += "?" + "&".join(f"{k}={_quote(v)}" for k, v in pairs)
    return out


def purl_of(package: Package, distro: Distro | None = None) -> str:
    """The purl of ``package``; OS packages carry the distro as namespace and qualifier."""
    kind = package.type
    if kind in (PackageType.DEB, PackageType.APK):
        namespace = distro.id if distro else ("debian" if kind is PackageType.DEB else "alpine")
        qualifiers = {"arch": package.arch, "distro": str(distro) if distro else None}
        return purl(kind, package.name, package.version, namespace=namespace, qualifiers=qualifiers)
    if kind is PackageType.PYPI:
        return purl(kind, package.name.lower().replace("_", "-"), package.version)
    if kind is PackageType.NPM:
        scope, _, name = package.name.rpartition("/")
        return purl(kind, name, package.version, namespace=scope or None)
    if kind is PackageType.GOLANG:
        namespace, _, name = package.name.rpartition("/")
        version = None if package.version in ("", "(devel)") else package.version
        return purl(kind, name, version, namespace=namespace or None)
    group, _, artifact = package.name.rpartition(":")
    return purl(kind, artifact, package.version, namespace=group or None)


def with_distro(packages: Iterable[Package], distro: Distro | None) -> list[Package]:
    """The packages with their purls computed for ``distro`` (known only once all layers are read)."""
    return [replace(p, purl=purl_of(p, distro)) for p in packages]


def _package(
    *,
    name: str,
    version: str,
    type: PackageType,
    source_name: str | None = None,
    source_version: str | None = None,
    arch: str | None = None,
    path: str | None = None,
    licenses: tuple[str, ...] = (),
) -> Package:
    package = Package(name, version, type, "", source_name, source_version, arch, None, path, licenses)
    return replace(package, purl=purl_of(package))


def sort_packages(packages: Iterable[Package]) -> list[Package]:
    """A stable order: by ecosystem, then name, version, architecture and path."""
    return sorted(
        packages, key=lambda p: (_TYPE_ORDER[p.type], p.name, p.version, p.arch or "", p.path or "", p.layer or "")
    )


# -- which files matter -------------------------------------------------------------------------


class FileKind(StrEnum):
    """The files a cataloguer reads (Go binaries are found by content, not by name)."""

    DPKG_STATUS = "dpkg-status"
    DPKG_STATUS_D = "dpkg-status.d"
    APK_INSTALLED = "apk-installed"
    PYTHON_METADATA = "python-metadata"
    NPM_PACKAGE = "npm-package"
    JAR = "jar"
    OS_RELEASE = "os-release"


_STATUS_D = re.compile(r"^var/lib/dpkg/status\.d/[^/]+$")
_PYTHON = re.compile(r"(?:\.dist-info/METADATA|\.egg-info/PKG-INFO|\.egg-info)$")
_NPM = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/.@][^/]*/package\.json$")
_JAR = re.compile(r"\.(?:jar|war|ear|par)$", re.IGNORECASE)


def normalize_path(name: str) -> str:
    """A tar member name as a root-relative path without ``./`` or trailing slash."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def classify(path: str) -> FileKind | None:
    """Which cataloguer wants the regular file at ``path`` (normalized), if any."""
    if path == "var/lib/dpkg/status":
        return FileKind.DPKG_STATUS
    if _STATUS_D.match(path) and not path.endswith(".md5sums"):
        return FileKind.DPKG_STATUS_D
    if path == "lib/apk/db/installed":
        return FileKind.APK_INSTALLED
    if path in ("etc/os-release", "usr/lib/os-release"):
        return FileKind.OS_RELEASE
    if _PYTHON.search(path):
        return FileKind.PYTHON_METADATA
    if _NPM.search(path):
        return FileKind.NPM_PACKAGE
    if _JAR.search(path):
        return FileKind.JAR
    return None


# -- Debian -------------------------------------------------------------------------------------


def _stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-style control paragraphs: ``Field: value`` with indented continuation lines."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                current[last] += "\n" + line.strip()
        else:
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                current[last] = value.strip()
    if current:
        out.append(current)
    return out


_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def parse_dpkg_status(text: str, path: str = "var/lib/dpkg/status", *, assume_installed: bool = False) -> list[Package]:
    """The installed packages in a dpkg status file (or one ``status.d/`` file, as distroless writes).

    A package counts when its ``Status`` ends in ``installed`` (``install ok installed``,
    ``hold ok installed``); with ``assume_installed`` a missing ``Status`` counts too.
    ``Source: name (version)`` gives the source version; without one it is the binary's.
    """
    packages: list[Package] = []
    for stanza in _stanzas(text):
        name, version = stanza.get("Package"), stanza.get("Version")
        if not name or not version:
            continue
        status = stanza.get("Status")
        if status is None:
            if not assume_installed:
                continue
        elif status.split()[-1:] != ["installed"]:
            continue
        source_name, source_version = name, version
        match = _SOURCE.match(stanza.get("Source", ""))
        if match:
            source_name = match.group(1)
            source_version = match.group(2) or version
        packages.append(
            _package(
                name=name,
                version=version,
                type=PackageType.DEB,
                source_name=source_name,
                source_version=source_version,
                arch=stanza.get("Architecture"),
                path=path,
            )
        )
    return packages


# -- Alpine -------------------------------------------------------------------------------------


def parse_apk_installed(text: str, path: str = "lib/apk/db/installed") -> list[Package]:
    """The packages in apk's installed database (``P:`` name, ``V:`` version, ``A:``, ``o:`` origin, ``L:``)."""
    packages: list[Package] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1 and key not in fields:
                fields[key] = value.strip()
        if not fields.get("P") or not fields.get("V"):
            continue
        packages.append(
            _package(
                name=fields["P"],
                version=fields["V"],
                type=PackageType.APK,
                source_name=fields.get("o") or fields["P"],
                source_version=fields["V"],
                arch=fields.get("A"),
                path=path,
                licenses=(fields["L"],) if fields.get("L") else (),
            )
        )
    return packages


# -- Python, npm, Java --------------------------------------------------------------------------


def parse_python_metadata(text: str, path: str = "") -> Package | None:
    """A distribution from its core metadata (``METADATA`` or ``PKG-INFO``: ``Name``, ``Version``)."""
    headers = HeaderParser().parsestr(text, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    licenses: tuple[str, ...] = ()
    expression, license_ = headers.get("License-Expression"), headers.get("License")
    if expression:
        licenses = (str(expression).strip(),)
    elif license_ and "\n" not in str(license_).strip() and str(license_).strip() not in ("", "UNKNOWN"):
        licenses = (str(license_).strip(),)
    else:
        classifiers = headers.get_all("Classifier") or []
        licenses = tuple(
            str(c).split("::")[-1].strip() for c in classifiers if str(c).startswith("License ::") and "::" in str(c)
        )
    return _package(
        name=str(name).strip(), version=str(version).strip(), type=PackageType.PYPI, path=path, licenses=licenses
    )


def _npm_licenses(doc: Mapping[str, object]) -> tuple[str, ...]:
    value = doc.get("license")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return (str(value["type"]),)
    many = doc.get("licenses")
    if isinstance(many, list):
        return tuple(str(v["type"]) for v in many if isinstance(v, dict) and isinstance(v.get("type"), str))
    return ()


def parse_package_json(data: bytes, path: str = "") -> Package | None:
    """An installed npm package from its ``package.json`` (None without a name and version)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return _package(name=name, version=version, type=PackageType.NPM, path=path, licenses=_npm_licenses(doc))


def parse_pom_properties(text: str, path: str = "") -> Package | None:
    """A Maven artifact from ``pom.properties`` (``groupId``, ``artifactId``, ``version``)."""
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            props[match.group(1)] = match.group(2).strip()
    group, artifact, version = props.get("groupId"), props.get("artifactId"), props.get("version")
    if not group or not artifact or not version:
        return None
    return _package(name=f"{group}:{artifact}", version=version, type=PackageType.MAVEN, path=path)


_POM = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_NESTED_MAX = 64 << 20


def parse_jar(data: bytes | IO[bytes], path: str = "", *, depth: int = 1) -> list[Package]:
    """The Maven artifacts in a jar/war/ear: each ``pom.properties``, and those of jars nested ``depth`` deep.

    Spring Boot's ``BOOT-INF/lib/*.jar`` and a war's ``WEB-INF/lib/*.jar`` are nested
    jars; they are read in memory up to 64 MiB each. A file that is not a zip gives nothing.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, OSError, ValueError):
        return []
    packages: list[Package] = []
    with archive:
        for info in archive.infolist():
            try:
                if _POM.match(info.filename):
                    found = parse_pom_properties(archive.read(info).decode("utf-8", "replace"), path)
                    if found is not None:
                        packages.append(found)
                elif depth > 0 and _JAR.search(info.filename) and info.file_size <= _NESTED_MAX:
                    packages += parse_jar(archive.read(info), f"{path}!{info.filename}", depth=depth - 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                continue
    return packages


# -- Go -----------------------------------------------------------------------------------------

#: How a Go binary's build info starts; the header is 32 bytes, 16-byte aligned.
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_GO_HEADER = 32
_GO_INLINE = 0x2  # flags bit: version and module info follow the header as varint-prefixed strings


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    sum: str = ""


@dataclass(frozen=True)
class GoBuildInfo:
    """What ``go version -m`` prints: the toolchain, the main package and module, the dependencies."""

    go_version: str
    path: str
    main: GoModule | None
    deps: tuple[GoModule, ...]


def _uvarint_bytes(data: bytes, at: int) -> tuple[bytes, int] | None:
    length, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            return None
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if at + length > len(data):
        return None
    return data[at : at + length], at + length


def _module(fields: Sequence[str]) -> GoModule | None:
    if not fields or not fields[0]:
        return None
    return GoModule(fields[0], fields[1] if len(fields) > 1 else "", fields[2] if len(fields) > 2 else "")


def _parse_modinfo(go_version: str, framed: bytes) -> GoBuildInfo:
    # Module info is framed by two 16-byte sentinels (cmd/go's infoStart and infoEnd).
    mod = framed[16:-16].decode("utf-8", "replace") if len(framed) >= 33 and framed[-17:-16] == b"\n" else ""
    path, main = "", None
    deps: list[GoModule] = []
    for line in mod.splitlines():
        word, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if word == "path":
            path = rest
        elif word == "mod":
            main = _module(fields)
        elif word == "dep":
            dep = _module(fields)
            if dep is not None:
                deps.append(dep)
        elif word == "=>":
            replacement = _module(fields)
            if replacement is None:
                continue
            if deps:
                deps[-1] = replacement
            elif main is not None:
                main = replacement
    return GoBuildInfo(go_version, path, main, tuple(deps))


def parse_go_buildinfo(data: bytes) -> GoBuildInfo | None:
    """The build info of a Go ≥ 1.18 binary (or any bytes holding its 16-byte-aligned header).

    Older binaries keep pointers into the data segment instead of inline strings; they
    give None, as do bytes without a header (the magic also appears as a plain string in
    binaries that link ``debug/buildinfo``, so each aligned hit is checked).
    """
    at = data.find(GO_BUILDINFO_MAGIC)
    while at != -1:
        if at % 16 == 0 and len(data) >= at + _GO_HEADER and data[at + 15] & _GO_INLINE:
            version = _uvarint_bytes(data, at + _GO_HEADER)
            if version is not None and version[0].startswith((b"go", b"devel")):
                mod = _uvarint_bytes(data, version[1])
                if mod is not None:
                    return _parse_modinfo(version[0].decode("utf-8", "replace"), mod[0])
        at = data.find(GO_BUILDINFO_MAGIC, at + 1)
    return None


def go_packages(info: GoBuildInfo, path: str = "") -> list[Package]:
    """The Go packages of a binary: ``stdlib`` at the toolchain version, the main module and each dependency."""
    packages: list[Package] = []
    toolchain = info.go_version.split()[0] if info.go_version.split() else ""
    if toolchain.startswith("go"):
        packages.append(_package(name="stdlib", version=toolchain[2:], type=PackageType.GOLANG, path=path))
    modules = ([info.main] if info.main is not None else []) + list(info.deps)
    for module in modules:
        version = module.version or "(devel)"
        packages.append(_package(name=module.path, version=version, type=PackageType.GOLANG, path=path))
    return packages


# -- os-release ---------------------------------------------------------------------------------


def parse_os_release(text: str) -> Distro | None:
    """The distro named by an ``os-release`` file (``ID``, ``VERSION_ID``), or None without an ID."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values[key.strip()] = value
    if not values.get("ID"):
        return None
    return Distro(
        id=values["ID"].lower(),
        version_id=values.get("VERSION_ID", ""),
        codename=values.get("VERSION_CODENAME", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
    )


# -- documents ----------------------------------------------------------------------------------


def _timestamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refs(packages: Sequence[Package]) -> list[str]:
    counts = Counter(p.purl for p in packages)
    return [p.purl if counts[p.purl] == 1 else f"{p.purl}#{p.path or ''}" for p in packages]


def to_cyclonedx(
    image_ref: str,
    digest: str,
    packages: Iterable[Package],
    *,
    distro: Distro | None = None,
    serial: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """A CycloneDX 1.5 JSON document: the image as ``metadata.component``, one library component per package."""
    ordered = sort_packages(packages)
    image_bom_ref = f"image:{digest}"
    components: list[dict[str, object]] = []
    if distro is not None:
        os_component: dict[str, object] = {
            "type": "operating-system",
            "bom-ref": f"os:{distro}",
            "name": distro.id,
            "version": distro.version_id or distro.codename,
        }
        if distro.pretty_name:
            os_component["description"] = distro.pretty_name
        components.append(os_component)
    for package, ref in zip(ordered, _refs(ordered), strict=True):
        component: dict[str, object] = {
            "type": "library",
            "bom-ref": ref,
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
        }
        if package.licenses:
            component["licenses"] = [{"license": {"name": text}} for text in package.licenses]
        properties = [
            {"name": "funade:package:type", "value": str(package.type)},
            *({"name": "funade:layer", "value": v} for v in [package.layer] if v),
            *({"name": "funade:path", "value": v} for v in [package.path] if v),
            *({"name": "funade:source-name", "value": v} for v in [package.source_name] if v),
            *({"name": "funade:source-version", "value": v} for v in [package.source_version] if v),
        ]
        component["properties"] = properties
        components.append(component)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial or uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": _timestamp(now),
            "tools": {"components": [{"type": "application", "name": "funade", "version": __version__}]},
            "component": {"type": "container", "bom-ref": image_bom_ref, "name": image_ref, "version": digest},
        },
        "components": components,
        "dependencies": [
            {"ref": image_bom_ref, "dependsOn": [str(c["bom-ref"]) for c in components]},
        ],
    }


def _spdx_id(kind: str, name: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "package"
    return f"SPDXRef-{kind}-{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def to_spdx(
    image_ref: str,
    digest: str,
    packages: Iterable[Package],
    *,
    namespace_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """An SPDX 2.3 JSON document: the document DESCRIBES the image, which CONTAINS each package."""
    ordered = sort_packages(packages)
    image_id = _spdx_id("Image", image_ref, digest)
    spdx_packages: list[dict[str, object]] = [
        {
            "name": image_ref,
            "SPDXID": image_id,
            "versionInfo": digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "CONTAINER",
        }
    ]
    relationships: list[dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    for package, ref in zip(ordered, _refs(ordered), strict=True):
        package_id = _spdx_id(f"Package-{package.type}", package.name, f"{ref}|{package.layer}")
        entry: dict[str, object] = {
            "name": package.name,
            "SPDXID": package_id,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl}
            ],
        }
        if package.source_name and package.source_name != package.name:
            entry["sourceInfo"] = f"built from source package {package.source_name} {package.source_version or ''}"
        spdx_packages.append(entry)
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": package_id}
        )
    name = urllib.parse.quote(re.sub(r"[^A-Za-z0-9._/:@-]+", "-", image_ref), safe="")
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image_ref,
        "documentNamespace": f"https://funade.dev/spdx/{name}-{namespace_id or uuid.uuid4()}",
        "creationInfo": {"created": _timestamp(now), "creators": [f"Tool: funade-{__version__}"]},
        "packages": spdx_packages,
        "relationships": relationships,
    }
