"""SBOM: the metadata parsers, purls, CycloneDX/SPDX documents, and cataloguing layered images from a registry."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import tarfile
import uuid
import zipfile
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from funade.adapters.docker import FakeDocker, NotFound
from funade.adapters.registry.client import DigestMismatch, RegistryClient
from funade.adapters.registry.fake import FakeRegistry
from funade.core import sbom
from funade.core.sbom import Distro, Package, PackageType
from funade.engine import sbom as engine_sbom

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.unit
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- fixtures built in memory -------------------------------------------------------------------

DPKG_STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1
Description: Secure Sockets Layer toolkit

Package: oldthing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1
"""

APK_INSTALLED = """\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
L:MIT
o:musl
T:the musl c library

C:Q1def=
P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0
o:openssl
"""

DEBIAN_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
)
ALPINE_OS_RELEASE = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n'


@dataclass(frozen=True)
class File:
    name: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    name: str


@dataclass(frozen=True)
class Link:
    name: str
    target: str
    hard: bool = False


def layer(*entries: File | Dir | Link) -> bytes:
    """A gzip-compressed layer tar holding ``entries`` in order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            if isinstance(entry, File):
                info.size, info.mode = len(entry.data), entry.mode
                tar.addfile(info, io.BytesIO(entry.data))
            elif isinstance(entry, Dir):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.type = tarfile.LNKTYPE if entry.hard else tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def go_binary(go_version: str = "go1.22.1", *, inline: bool = True) -> bytes:
    """A tiny fake ELF holding a Go ≥ 1.18 build-info blob (and the magic once more, unaligned, as a decoy)."""
    mod = (
        b"path\texample.com/app/cmd/app\n"
        b"mod\texample.com/app\t(devel)\t\n"
        b"dep\tgithub.com/gorilla/mux\tv1.8.1\th1:abc=\n"
        b"dep\tgolang.org/x/text\tv0.3.0\th1:old=\n"
        b"=>\tgolang.org/x/text\tv0.14.0\th1:new=\n"
        b"dep\tgithub.com/docker/docker\tv24.0.7+incompatible\th1:x=\n"
        b"build\t-compiler=gc\n"
    )
    framed = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6" + mod + b"\xf9\x32\x43\x31" * 4
    version = go_version.encode()
    header = sbom.GO_BUILDINFO_MAGIC + bytes([8, 0x2 if inline else 0x0]) + b"\0" * 16
    info = header + uvarint(len(version)) + version + uvarint(len(framed)) + framed
    prefix = b"\x7fELF" + b"\0" * 3 + sbom.GO_BUILDINFO_MAGIC + b"junk"  # an unaligned decoy
    prefix += b"\0" * (-len(prefix) % 16)
    return prefix + info + b"\0" * 100


def jar(*poms: tuple[str, str, str], nested: dict[str, bytes] | None = None) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for group, artifact, version in poms:
            archive.writestr(
                f"META-INF/maven/{group}/{artifact}/pom.properties",
                f"#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n",
            )
        for name, data in (nested or {}).items():
            archive.writestr(name, data)
    return raw.getvalue()


def client(fake: FakeRegistry) -> RegistryClient:
    return RegistryClient(fake.host, transport=fake, scheme="http")


def catalogue(fake: FakeRegistry, repository: str, reference: str, platform: str = "linux/amd64") -> sbom.Sbom:
    async def go() -> sbom.Sbom:
        registry = client(fake)
        try:
            return await engine_sbom.catalogue(registry, repository, reference, platform=platform)
        finally:
            await registry.close()

    return run(go())


def by_name(found: sbom.Sbom) -> dict[str, Package]:
    return {p.name: p for p in found.packages}


# -- parsers ------------------------------------------------------------------------------------


def test_dpkg_status_keeps_installed_packages_with_their_source() -> None:
    packages = {p.name: p for p in sbom.parse_dpkg_status(DPKG_STATUS)}
    assert set(packages) == {"libc6", "libssl3", "tzdata"}  # deinstalled config-files are not installed
    libc = packages["libc6"]
    assert (libc.version, libc.arch, libc.source_name, libc.source_version) == (
        "2.36-9+deb12u4",
        "amd64",
        "glibc",
        "2.36-9+deb12u4",
    )
    ssl = packages["libssl3"]
    assert (ssl.source_name, ssl.source_version) == ("openssl", "3.0.11-1~deb12u2")  # a binNMU: source differs
    assert (packages["tzdata"].source_name, packages["tzdata"].source_version) == ("tzdata", "2024a-0+deb12u1")


def test_dpkg_status_d_entries_count_without_a_status_field() -> None:
    text = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
    assert sbom.parse_dpkg_status(text) == []
    (package,) = sbom.parse_dpkg_status(text, "var/lib/dpkg/status.d/base", assume_installed=True)
    assert package.name == "base-files" and package.path == "var/lib/dpkg/status.d/base"


def test_apk_installed_database() -> None:
    packages = {p.name: p for p in sbom.parse_apk_installed(APK_INSTALLED)}
    assert set(packages) == {"musl", "libcrypto3"}
    crypto = packages["libcrypto3"]
    assert (crypto.version, crypto.arch, crypto.source_name, crypto.licenses) == (
        "3.1.4-r5",
        "x86_64",
        "openssl",
        ("Apache-2.0",),
    )
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64"


def test_python_metadata_and_pkg_info() -> None:
    metadata = (
        "Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.9.0\nLicense: UNKNOWN\n"
        "Classifier: License :: OSI Approved :: Python Software Foundation License\n\nLong description\n"
    )
    package = sbom.parse_python_metadata(metadata, "site-packages/typing_extensions-4.9.0.dist-info/METADATA")
    assert package is not None
    assert (package.name, package.version) == ("Typing_Extensions", "4.9.0")
    assert package.purl == "pkg:pypi/typing-extensions@4.9.0"
    assert package.licenses == ("Python Software Foundation License",)
    egg = sbom.parse_python_metadata("Metadata-Version: 1.0\nName: six\nVersion: 1.16.0\nLicense: MIT\n")
    assert egg is not None and egg.licenses == ("MIT",)
    assert sbom.parse_python_metadata("Metadata-Version: 2.1\nName: broken\n") is None


def test_package_json() -> None:
    scoped = sbom.parse_package_json(b'{"name": "@angular/core", "version": "17.0.1", "license": "MIT"}')
    assert scoped is not None and scoped.purl == "pkg:npm/%40angular/core@17.0.1" and scoped.licenses == ("MIT",)
    assert sbom.parse_package_json(b'{"name": "x"}') is None
    assert sbom.parse_package_json(b"not json") is None


def test_pom_properties_and_jars() -> None:
    found = sbom.parse_pom_properties("groupId = org.apache.commons\nartifactId:commons-lang3\nversion=3.14.0\n")
    assert found is not None and found.purl == "pkg:maven/org.apache.commons/commons-lang3@3.14.0"
    inner = jar(("com.google.guava", "guava", "32.1.3-jre"))
    outer = jar(("com.example", "app", "1.0.0"), nested={"BOOT-INF/lib/guava-32.1.3-jre.jar": inner})
    packages = {p.name: p for p in sbom.parse_jar(outer, "app/app.jar")}
    assert set(packages) == {"com.example:app", "com.google.guava:guava"}
    assert packages["com.google.guava:guava"].path == "app/app.jar!BOOT-INF/lib/guava-32.1.3-jre.jar"
    assert sbom.parse_jar(b"not a zip") == []


def test_go_buildinfo_inline_format() -> None:
    info = sbom.parse_go_buildinfo(go_binary())
    assert info is not None
    assert info.go_version == "go1.22.1" and info.path == "example.com/app/cmd/app"
    assert info.main == sbom.GoModule("example.com/app", "(devel)", "")
    assert [(d.path, d.version) for d in info.deps] == [
        ("github.com/gorilla/mux", "v1.8.1"),
        ("golang.org/x/text", "v0.14.0"),  # the replacement wins
        ("github.com/docker/docker", "v24.0.7+incompatible"),
    ]
    purls = {p.name: p.purl for p in sbom.go_packages(info)}
    assert purls == {
        "stdlib": "pkg:golang/stdlib@1.22.1",
        "example.com/app": "pkg:golang/example.com/app",
        "github.com/gorilla/mux": "pkg:golang/github.com/gorilla/mux@v1.8.1",
        "golang.org/x/text": "pkg:golang/golang.org/x/text@v0.14.0",
        "github.com/docker/docker": "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible",
    }


def test_go_buildinfo_pointer_format_and_other_bytes_give_none() -> None:
    assert sbom.parse_go_buildinfo(go_binary(inline=False)) is None
    assert sbom.parse_go_buildinfo(b"\x7fELF" + b"\0" * 1000) is None


def test_os_release() -> None:
    assert sbom.parse_os_release(DEBIAN_OS_RELEASE.decode()) == Distro(
        "debian", "12", "", "Debian GNU/Linux 12 (bookworm)"
    )
    assert str(sbom.parse_os_release(ALPINE_OS_RELEASE.decode())) == "alpine-3.19.1"
    assert sbom.parse_os_release("NAME=nothing\n") is None


def test_purls_escape_per_the_spec() -> None:
    (libc, *_) = sbom.parse_dpkg_status(DPKG_STATUS)
    debian = Distro("debian", "12")
    assert sbom.purl_of(libc, debian) == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    epoch = Package("perl", "1:5.36.0-7", PackageType.DEB, arch="amd64")
    assert sbom.purl_of(epoch, debian) == "pkg:deb/debian/perl@1:5.36.0-7?arch=amd64&distro=debian-12"
    assert sbom.purl("generic", "a b", "1.0", qualifiers={"Z": "x/y", "a": "1"}) == "pkg:generic/a%20b@1.0?a=1&z=x%2Fy"


def test_classify_picks_only_what_catalogers_read() -> None:
    kinds = {
        "var/lib/dpkg/status": sbom.FileKind.DPKG_STATUS,
        "var/lib/dpkg/status.d/libc6": sbom.FileKind.DPKG_STATUS_D,
        "var/lib/dpkg/status.d/libc6.md5sums": None,
        "lib/apk/db/installed": sbom.FileKind.APK_INSTALLED,
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info": sbom.FileKind.PYTHON_METADATA,
        "app/node_modules/@scope/pkg/package.json": sbom.FileKind.NPM_PACKAGE,
        "app/node_modules/a/node_modules/b/package.json": sbom.FileKind.NPM_PACKAGE,
        "app/node_modules/a/lib/package.json": None,
        "app/package.json": None,
        "opt/app/App.JAR": sbom.FileKind.JAR,
        "etc/os-release": sbom.FileKind.OS_RELEASE,
    }
    assert {path: sbom.classify(path) for path in kinds} == kinds
    assert sbom.normalize_path("./etc//os-release") == "etc/os-release"


# -- documents ----------------------------------------------------------------------------------


def _sample() -> list[Package]:
    packages = sbom.parse_dpkg_status(DPKG_STATUS) + [
        p for p in [sbom.parse_package_json(b'{"name": "left-pad", "version": "1.3.0"}', "n/left-pad")] if p
    ]
    return sbom.with_distro(packages, Distro("debian", "12"))


def test_cyclonedx_document() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    serial = uuid.UUID(int=1)
    doc = sbom.to_cyclonedx("registry.test/web:1.0", "sha256:" + "a" * 64, _sample(), serial=serial, now=now)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5" and doc["version"] == 1
    assert doc["serialNumber"] == f"urn:uuid:{serial}"
    metadata = doc["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["timestamp"] == "2026-11-01T00:00:00Z"
    assert metadata["component"]["type"] == "container"
    components = doc["components"]
    assert isinstance(components, list)
    refs = [c["bom-ref"] for c in components]
    assert len(refs) == len(set(refs))
    assert all({"type", "name", "version", "purl", "bom-ref"} <= set(c) for c in components)
    assert [c["name"] for c in components] == ["libc6", "libssl3", "tzdata", "left-pad"]  # the stable order
    assert components[0]["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    json.dumps(doc)  # serialisable as is


def test_spdx_document() -> None:
    doc = sbom.to_spdx("registry.test/web:1.0", "sha256:" + "a" * 64, _sample(), namespace_id=uuid.UUID(int=2))
    for key in ("spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo", "packages"):
        assert key in doc
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0" and doc["SPDXID"] == "SPDXRef-DOCUMENT"
    assert str(doc["documentNamespace"]).startswith("https://") and str(uuid.UUID(int=2)) in str(
        doc["documentNamespace"]
    )
    packages = doc["packages"]
    assert isinstance(packages, list)
    ids = [p["SPDXID"] for p in packages]
    assert len(ids) == len(set(ids)) and all(i.startswith("SPDXRef-") for i in ids)
    for package in packages:
        assert {"name", "SPDXID", "downloadLocation", "filesAnalyzed"} <= set(package)
    libc = next(p for p in packages if p["name"] == "libc6")
    assert libc["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
        }
    ]
    relationships = doc["relationships"]
    assert isinstance(relationships, list)
    assert relationships[0] == {
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": ids[0],
    }
    contained = {r["relatedSpdxElement"] for r in relationships if r["relationshipType"] == "CONTAINS"}
    assert contained == set(ids[1:])


# -- cataloguing images -------------------------------------------------------------------------


def test_debian_image_with_language_packages_and_layer_attribution() -> None:
    fake = FakeRegistry()
    base = layer(
        Dir("etc"),
        File("etc/os-release", DEBIAN_OS_RELEASE),
        File("var/lib/dpkg/status", DPKG_STATUS.split("\n\nPackage: oldthing", maxsplit=1)[0].encode() + b"\n"),
    )
    apt = layer(
        File(
            "./var/lib/dpkg/status",
            DPKG_STATUS.encode() + b"\nPackage: curl\nStatus: install ok installed\n"
            b"Architecture: amd64\nVersion: 7.88.1-10+deb12u5\n",
        ),
    )
    app = layer(
        File("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", b"Name: requests\nVersion: 2.31.0\n"),
        File("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", b"Name: six\nVersion: 1.16.0\n"),
        File("app/node_modules/express/package.json", b'{"name": "express", "version": "4.18.2"}'),
        File("app/node_modules/express/node_modules/debug/package.json", b'{"name": "debug", "version": "2.6.9"}'),
        File("app/node_modules/express/lib/package.json", b'{"name": "not-a-package", "version": "0"}'),
        File("usr/local/bin/app", go_binary(), mode=0o755),
        File("usr/local/bin/not-exec", go_binary(), mode=0o644),
        Link("usr/local/bin/app-again", "usr/local/bin/app", hard=True),
        File("opt/app.jar", jar(("org.slf4j", "slf4j-api", "2.0.9"))),
    )
    image = fake.put_image("web", "1.0", [base, apt, app])
    found = catalogue(fake, "web", "1.0")
    assert found.digest == image.digest and found.platform == "linux/amd64"
    assert found.distro == Distro("debian", "12", "", "Debian GNU/Linux 12 (bookworm)")
    assert found.layers == tuple(layer.digest for layer in image.layers)
    packages = by_name(found)
    assert packages["libc6"].purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    assert packages["libc6"].layer == image.layers[0].digest  # unchanged since the base layer
    assert packages["curl"].layer == image.layers[1].digest  # installed by the apt layer
    assert "oldthing" not in packages and "not-a-package" not in packages
    assert packages["requests"].purl == "pkg:pypi/requests@2.31.0"
    assert packages["six"].layer == image.layers[2].digest
    assert packages["debug"].path == "app/node_modules/express/node_modules/debug/package.json"
    assert packages["org.slf4j:slf4j-api"].purl == "pkg:maven/org.slf4j/slf4j-api@2.0.9"
    go = [p for p in found.packages if p.name == "github.com/gorilla/mux"]
    assert sorted(p.path or "" for p in go) == ["usr/local/bin/app", "usr/local/bin/app-again"]
    assert [p.type for p in found.packages] == sorted((p.type for p in found.packages), key=list(PackageType).index)


def test_distroless_status_d_and_index_platform() -> None:
    fake = FakeRegistry()
    files = [
        File("var/lib/dpkg/status.d/base", b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"),
        File("var/lib/dpkg/status.d/base.md5sums", b"abc  etc/debian_version\n"),
        File(
            "var/lib/dpkg/status.d/libssl3",
            b"Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n",
        ),
        File("etc/os-release", DEBIAN_OS_RELEASE),
    ]
    amd = fake.put_image("distroless", None, [layer(*files)], platform="linux/amd64")
    arm = fake.put_image("distroless", None, [layer(files[0])], platform="linux/arm64")
    fake.put_index("distroless", "nonroot", [amd, arm])
    found = catalogue(fake, "distroless", "nonroot")
    assert found.digest == amd.digest
    assert [(p.name, p.source_name) for p in found.packages] == [("base-files", "base-files"), ("libssl3", "openssl")]
    arm_found = catalogue(fake, "distroless", "nonroot", platform="linux/arm64")
    assert arm_found.digest == arm.digest and arm_found.platform == "linux/arm64"
    with pytest.raises(engine_sbom.SbomError, match="linux/s390x"):
        catalogue(fake, "distroless", "nonroot", platform="linux/s390x")


def test_alpine_image() -> None:
    fake = FakeRegistry()
    fake.put_image(
        "alpine",
        "3.19",
        [layer(File("etc/os-release", ALPINE_OS_RELEASE), File("lib/apk/db/installed", APK_INSTALLED.encode()))],
    )
    found = catalogue(fake, "alpine", "3.19")
    assert by_name(found)["musl"].purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"


def test_whiteout_removes_a_package_from_a_lower_layer() -> None:
    fake = FakeRegistry()
    site = "usr/lib/python3.11/site-packages"
    lower = layer(
        File(f"{site}/six-1.16.0.dist-info/METADATA", b"Name: six\nVersion: 1.16.0\n"),
        File(f"{site}/idna-3.6.dist-info/METADATA", b"Name: idna\nVersion: 3.6\n"),
        File("opt/app.jar", jar(("org.slf4j", "slf4j-api", "2.0.9"))),
    )
    # Removes six's whole dist-info, upgrades idna (the old dist-info whited out after the new
    # one is written: whiteouts only ever hide lower layers) and replaces the jar.
    upper = layer(
        File(f"{site}/.wh.six-1.16.0.dist-info", b""),
        File(f"{site}/idna-3.7.dist-info/METADATA", b"Name: idna\nVersion: 3.7\n"),
        File(f"{site}/.wh.idna-3.6.dist-info", b""),
        File("opt/app.jar", jar(("org.slf4j", "slf4j-api", "2.0.12"))),
    )
    image = fake.put_image("py", "1", [lower, upper])
    packages = by_name(catalogue(fake, "py", "1"))
    assert set(packages) == {"idna", "org.slf4j:slf4j-api"}
    assert packages["idna"].version == "3.7" and packages["idna"].layer == image.layers[1].digest
    assert packages["org.slf4j:slf4j-api"].version == "2.0.12"


def test_opaque_directory_hides_everything_below_it_from_lower_layers() -> None:
    fake = FakeRegistry()
    lower = layer(
        File("app/node_modules/lodash/package.json", b'{"name": "lodash", "version": "4.17.20"}'),
        File("app/node_modules/chalk/package.json", b'{"name": "chalk", "version": "5.3.0"}'),
        File("srv/node_modules/kept/package.json", b'{"name": "kept", "version": "1.0.0"}'),
    )
    upper = layer(
        Dir("app/node_modules"),
        File("app/node_modules/lodash/package.json", b'{"name": "lodash", "version": "4.17.21"}'),
        File("app/node_modules/.wh..wh..opq", b""),
    )
    fake.put_image("node", "1", [lower, upper])
    packages = by_name(catalogue(fake, "node", "1"))
    assert {name: p.version for name, p in packages.items()} == {"lodash": "4.17.21", "kept": "1.0.0"}


def test_a_file_replacing_a_directory_hides_what_was_in_it() -> None:
    fake = FakeRegistry()
    lower = layer(File("opt/lib/a-1.0.dist-info/METADATA", b"Name: a\nVersion: 1.0\n"))
    upper = layer(Link("opt/lib", "/usr/lib"))
    fake.put_image("swap", "1", [lower, upper])
    assert catalogue(fake, "swap", "1").packages == ()


def test_uncompressed_layers_and_unreadable_layers() -> None:
    fake = FakeRegistry()
    plain = gzip.decompress(layer(File("lib/apk/db/installed", APK_INSTALLED.encode())))
    fake.put_image("plain", "1", [plain])
    assert {p.name for p in catalogue(fake, "plain", "1").packages} == {"musl", "libcrypto3"}
    fake.put_image("bad", "1", [b"\x28\xb5\x2f\xfd" + b"\0" * 64])  # a zstd frame header, then garbage
    with pytest.raises(engine_sbom.SbomError, match="cannot read layer"):
        catalogue(fake, "bad", "1")
    fake.put_image("junk", "1", [gzip.compress(b"not a tar at all" * 10)])
    with pytest.raises(engine_sbom.SbomError, match="cannot read layer"):
        catalogue(fake, "junk", "1")


def test_zstd_layers_are_read_like_gzip_ones_whatever_the_media_type_says() -> None:
    fake = FakeRegistry()
    site = "usr/lib/python3.11/site-packages"
    tar = gzip.decompress(layer(File(f"{site}/six-1.16.0.dist-info/METADATA", b"Name: six\nVersion: 1.16.0\n")))
    upper = gzip.decompress(
        layer(File(f"{site}/.wh.six-1.16.0.dist-info", b""), File("lib/apk/db/installed", APK_INSTALLED.encode()))
    )
    # Two frames in the second layer, as a streaming compressor may write them.
    halves = zstd.compress(upper[:700]) + zstd.compress(upper[700:])
    image = fake.put_image("zstd", "1", [zstd.compress(tar), halves])
    found = catalogue(fake, "zstd", "1")
    assert {p.name for p in found.packages} == {"musl", "libcrypto3"}  # the whiteout in the zstd layer applied
    assert {p.layer for p in found.packages} == {image.layers[1].digest}


def test_a_tampered_layer_fails_its_digest_check_even_past_the_tar_end() -> None:
    fake = FakeRegistry()
    data = layer(File("lib/apk/db/installed", APK_INSTALLED.encode()))
    image = fake.put_image("apk", "1", [data])
    fake.tamper(image.layers[0].digest, data + b"\0" * 1024)  # same tar, trailing bytes after the gzip member
    with pytest.raises(DigestMismatch):
        catalogue(fake, "apk", "1")


# -- cataloguing an image of the local engine (docker save) ---------------------------------------


def catalogue_local(images: engine_sbom.LocalImages, name: str) -> sbom.Sbom:
    return run(engine_sbom.catalogue_local(images, name))


def comparable(found: sbom.Sbom) -> list[tuple[str, str, str, str, str | None, int]]:
    """Packages with their layer as a position, so the registry's and the engine's digests compare."""
    return [(p.type, p.name, p.version, p.purl, p.path, found.layers.index(p.layer or "")) for p in found.packages]


def test_an_image_of_the_local_engine_gives_what_the_registry_gives() -> None:
    """The same layers read from ``docker save`` and from a registry: the same packages from the same layers."""
    base = layer(
        File("etc/os-release", DEBIAN_OS_RELEASE),
        File("var/lib/dpkg/status", DPKG_STATUS.split("\n\nPackage: oldthing", maxsplit=1)[0].encode() + b"\n"),
    )
    site = "usr/lib/python3/dist-packages"
    apt = layer(
        File(
            "var/lib/dpkg/status",
            DPKG_STATUS.encode() + b"\nPackage: curl\nStatus: install ok installed\nVersion: 7.88.1-10+deb12u5\n",
        ),
        File(f"{site}/six-1.16.0.dist-info/METADATA", b"Name: six\nVersion: 1.16.0\n"),
        File(f"{site}/idna-3.6.dist-info/METADATA", b"Name: idna\nVersion: 3.6\n"),
    )
    app = layer(
        File(f"{site}/.wh.six-1.16.0.dist-info", b""),
        File("usr/local/bin/app", go_binary(), mode=0o755),
        File("opt/app.jar", jar(("org.slf4j", "slf4j-api", "2.0.9"))),
        File("app/node_modules/express/package.json", b'{"name": "express", "version": "4.18.2"}'),
    )
    registry = FakeRegistry()
    registry.put_image("web", "1.0", [base, apt, app])
    docker = FakeDocker()
    image_id = docker.add_image("web:1.0", layers=[base, apt, app])
    remote, local = catalogue(registry, "web", "1.0"), catalogue_local(docker, "web:1.0")
    assert comparable(local) == comparable(remote) and local.distro == remote.distro
    assert local.reference == "web:1.0" and local.digest == image_id and local.platform == "linux/amd64"
    # The engine names layers by their uncompressed digest (diff_id): gunzipped, as `docker save` writes them.
    assert local.layers == tuple("sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() for b in (base, apt, app))
    packages = by_name(local)
    assert "six" not in packages and packages["idna"].layer == local.layers[1]
    assert packages["libc6"].layer == local.layers[0] and packages["curl"].layer == local.layers[1]
    assert packages["github.com/gorilla/mux"].layer == local.layers[2]


def test_a_layer_saved_twice_is_a_link_to_its_first_copy() -> None:
    """``docker save`` writes a layer that recurs (an empty ``RUN``, say) once and links the rest to it."""
    empty = layer()
    apk = layer(File("etc/os-release", ALPINE_OS_RELEASE), File("lib/apk/db/installed", APK_INSTALLED.encode()))
    docker = FakeDocker()
    docker.add_image("alpine:3.19", layers=[empty, apk, empty])
    found = catalogue_local(docker, "alpine:3.19")
    assert {p.name for p in found.packages} == {"musl", "libcrypto3"}
    assert found.layers[0] == found.layers[2] != found.layers[1]
    assert by_name(found)["musl"].layer == found.layers[1]


@dataclass
class Saved:
    """An engine that exports one fixed ``docker save`` tar, in small chunks."""

    data: bytes
    asked: list[str]

    async def export_image(self, ref: str) -> AsyncGenerator[bytes, None]:
        self.asked.append(ref)
        for at in range(0, len(self.data), 1000):
            yield self.data[at : at + 1000]


def tar_of(*members: tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def blob(data: bytes) -> tuple[str, str]:
    hexdigest = hashlib.sha256(data).hexdigest()
    return f"sha256:{hexdigest}", f"blobs/sha256/{hexdigest}"


def oci_save(layers: list[bytes], *, junk: bytes = b"") -> tuple[bytes, str, list[str]]:
    """A ``docker save`` in the OCI layout Docker 25 writes (layers gzipped, as the containerd store keeps them),
    with manifest.json first; returns the tar, the config digest and the layer digests."""
    diff_ids = [
        "sha256:" + hashlib.sha256(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b).hexdigest() for b in layers
    ]
    config = json.dumps(
        {"architecture": "arm64", "os": "linux", "variant": "v8", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    config_digest, config_path = blob(config)
    layer_blobs = [blob(b) for b in layers]
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": config_digest}}).encode()
    members = [
        (
            "manifest.json",
            json.dumps(
                [{"Config": config_path, "RepoTags": ["app:2"], "Layers": [p for _, p in layer_blobs]}]
            ).encode(),
        ),
        ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        (blob(manifest)[1], manifest),
        (config_path, config),
        *((path, data) for (_, path), data in zip(layer_blobs, layers, strict=True)),
    ]
    if junk:
        members.append((blob(junk)[1], junk))
    members.append(("index.json", b'{"schemaVersion": 2, "manifests": []}'))
    return tar_of(*members), config_digest, [d for d, _ in layer_blobs]


def test_the_oci_layout_of_newer_engines_in_any_member_order() -> None:
    base = layer(File("etc/os-release", ALPINE_OS_RELEASE), File("lib/apk/db/installed", APK_INSTALLED.encode()))
    py = gzip.decompress(
        layer(File("usr/lib/python3.11/site-packages/idna-3.7.dist-info/METADATA", b"Name: idna\nVersion: 3.7\n"))
    )
    data, config_digest, digests = oci_save([base, py], junk=b"an attestation that is neither JSON nor a tar" * 50)
    engine = Saved(data, [])
    found = catalogue_local(engine, "app:2")
    assert engine.asked == ["app:2"]
    assert found.digest == config_digest and found.platform == "linux/arm64/v8" and found.layers == tuple(digests)
    packages = by_name(found)
    assert packages["musl"].layer == digests[0] and packages["idna"].layer == digests[1]
    assert packages["musl"].purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"


def test_unreadable_saved_images() -> None:
    with pytest.raises(engine_sbom.SbomError, match="cannot read layer"):
        catalogue_local(Saved(oci_save([gzip.compress(b"not a tar at all" * 10)])[0], []), "app:2")
    with pytest.raises(engine_sbom.SbomError, match=r"no manifest\.json"):
        catalogue_local(Saved(tar_of(("index.json", b"{}")), []), "app:2")
    with pytest.raises(engine_sbom.SbomError, match="cannot read the saved image"):
        catalogue_local(Saved(b"\x01" * 2048, []), "app:2")
    with pytest.raises(NotFound):
        catalogue_local(FakeDocker(), "nosuch:1")
