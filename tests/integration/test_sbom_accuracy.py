"""SBOM accuracy on a real Debian image: funade's package list must equal what the image's own tools say.

The image is ``funade-debian:12-py`` (``scripts/build-debian-image.sh``: debootstrap
minbase bookworm from Debian's mirror, plus ~30 packages installed with apt-get; about
190 packages). It is catalogued twice with ``funade image sbom -o json``: from the local
engine (``--local``: ``docker save``), and pushed to a funade server's embedded registry
with ``funade image push`` and read from there (``--remote``), without a pull; each must
pass the accuracy checks, and the two must agree. The yardsticks run inside a container
of the same image: ``dpkg-query -W`` for the Debian packages, ``python3 -m pip list`` for
the Python distributions in ``dist-packages`` (Debian ships both ``.dist-info`` and
``.egg-info`` there). A scan from the engine then matches an advisory by source package.

The first run on a machine builds the image (about 50 s with a reachable mirror); after
that the module takes about 25 s.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from funade.adapters.registry.client import RegistryClient
from funade.core import oci
from tests.integration.conftest import REPO_ROOT, Funade, running_server

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.integration

IMAGE = "funade-debian:12-py"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-debian-image.sh"
DPKG_FORMAT = r"${db:Status-Status} ${Package} ${Version} ${Architecture}\n"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"

Deb = tuple[str, str, str]  # (name, version, architecture)


def docker_run(*argv: str) -> str:
    """stdout of ``docker run --rm IMAGE ARGV``: the image's own view of itself."""
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", IMAGE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"docker run {IMAGE} {' '.join(argv)}: {done.stderr}"
    return done.stdout


def canonical(name: str) -> str:
    """A Python distribution name as PEP 503 compares them (``PyYAML`` = ``pyyaml``, ``a_b`` = ``a-b``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def arch_of(purl: str) -> str | None:
    """The ``arch`` qualifier of a package URL (``-o json`` carries it only there)."""
    _, _, qualifiers = purl.partition("?")
    values = parse_qs(qualifiers.partition("#")[0]).get("arch")
    return values[0] if values else None


@pytest.fixture(scope="module")
def image() -> str:
    """The Debian test image, built once per machine (the script returns at once when it is current)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{BUILD_SCRIPT.name} failed:\n{done.stdout}{done.stderr}"
    return IMAGE


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funade]:
    with running_server(tmp_path_factory.mktemp("sbom-accuracy")) as server:
        yield server


@pytest.fixture(scope="module")
def remote_sbom(stack: Funade, image: str) -> dict[str, Any]:
    """``funade image sbom --remote -o json`` of the image, pushed to the stack's registry first."""
    pushed = stack.cli("image", "push", image, "-o", "json", timeout=300)
    assert pushed.code == 0, pushed.output
    (record,) = json.loads(pushed.stdout)
    try:
        assert record["pushed"] is True and record["image"] == f"{stack.env['FUNADE_REGISTRY']}/{image}"
        found = stack.cli("image", "sbom", image, "--remote", "-o", "json", timeout=300)
        assert found.code == 0, found.output
        return dict(json.loads(found.stdout))
    finally:
        # `image push` tags the local image REGISTRY/NAME; that tag names a registry that is about to go.
        subprocess.run(["docker", "rmi", record["image"]], capture_output=True, check=False, timeout=60)


@pytest.fixture(scope="module")
def local_sbom(stack: Funade, image: str) -> dict[str, Any]:
    """``funade image sbom --local -o json``: the image read from the engine's ``docker save``."""
    found = stack.cli("image", "sbom", image, "--local", "-o", "json", timeout=300)
    assert found.code == 0, found.output
    return dict(json.loads(found.stdout))


@pytest.fixture(params=["remote_sbom", "local_sbom"])
def sbom(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each path's SBOM in turn: the registry's, then the engine's."""
    return dict(request.getfixturevalue(request.param))


def test_debian_packages_equal_dpkg_query(sbom: dict[str, Any]) -> None:
    rows = [line.split(" ") for line in docker_run("dpkg-query", "-W", "-f", DPKG_FORMAT).splitlines()]
    # dpkg-query also lists removed packages whose config files remain; this image has none, so
    # the comparison below is with everything dpkg-query prints.
    assert all(status == "installed" for status, *_ in rows), [r for r in rows if r[0] != "installed"]
    expected: set[Deb] = {(name, version, arch) for _, name, version, arch in rows}
    debs = [p for p in sbom["packages"] if p["type"] == "deb"]
    listed: list[Deb] = [(p["name"], p["version"], arch_of(p["purl"]) or "") for p in debs]
    assert len(listed) == len(set(listed)), "a Debian package is listed twice"
    assert len(expected) >= 100, f"the test image should have about 190 packages, not {len(expected)}"
    missing, extra = sorted(expected - set(listed)), sorted(set(listed) - expected)
    assert not missing and not extra, f"missing from the SBOM: {missing}\nnot installed: {extra}"
    assert sbom["distro"] == "debian-12"
    # Each package also names its source package, which Debian advisories are keyed by.
    by_name = {p["name"]: p for p in debs}
    assert by_name["libc6"]["source"] == "glibc" and by_name["libssl3"]["source"] == "openssl"
    assert by_name["python3.11-minimal"]["source"] == "python3.11"
    # Two layers: debootstrap's import and the apt-get commit; each package names the one that brought it.
    assert by_name["bash"]["layer"] != by_name["curl"]["layer"]
    assert {by_name["bash"]["layer"], by_name["curl"]["layer"]} == set(sbom_layers(sbom))


def sbom_layers(sbom: dict[str, Any]) -> set[str]:
    return {p["layer"] for p in sbom["packages"]}


def test_python_distributions_equal_pip_list(sbom: dict[str, Any]) -> None:
    if not docker_run("sh", "-c", "ls -d /usr/lib/python3/dist-packages 2>/dev/null || true").strip():
        pytest.skip("the image has no Python dist-packages")
    listed = json.loads(docker_run("python3", "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"))
    expected = {(canonical(d["name"]), d["version"]) for d in listed}
    found = [(canonical(p["name"]), p["version"]) for p in sbom["packages"] if p["type"] == "pypi"]
    assert len(expected) >= 5, f"pip lists only {expected}"
    assert len(found) == len(set(found)), f"a Python distribution is listed twice: {sorted(found)}"
    assert set(found) == expected
    paths = {canonical(p["name"]): p["path"] for p in sbom["packages"] if p["type"] == "pypi"}
    assert paths["requests"].endswith(".egg-info/PKG-INFO") or Path(paths["requests"]).parent.suffix == ".egg-info"
    assert paths["pip"].endswith(".dist-info/METADATA")


def test_the_engine_and_the_registry_agree(local_sbom: dict[str, Any], remote_sbom: dict[str, Any]) -> None:
    """The same packages, from the same paths, attributed to the same layer (by position: the digests differ)."""

    def comparable(found: dict[str, Any]) -> list[tuple[Any, ...]]:
        layers = found["layers"]
        return [
            (p["type"], p["name"], p["version"], p["purl"], p["path"], layers.index(p["layer"]))
            for p in found["packages"]
        ]

    assert (local_sbom["source"], remote_sbom["source"]) == ("engine", "registry")
    assert comparable(local_sbom) == comparable(remote_sbom)
    assert local_sbom["distro"] == remote_sbom["distro"] and local_sbom["platform"] == remote_sbom["platform"]


def test_a_scan_from_the_engine_matches_by_source_package(stack: Funade, image: str, tmp_path: Path) -> None:
    """An advisory on glibc, fixed after the installed version, reaches every binary package built from it."""
    rows = [
        line.split(" ")
        for line in docker_run("dpkg-query", "-W", "-f", "${Package} ${source:Package} ${Version}\n").splitlines()
    ]
    from_glibc = {name: version for name, source, version in rows if source == "glibc"}
    assert "libc6" in from_glibc
    advisory = {
        "id": "DSA-9999-1",
        "modified": "2026-11-01T00:00:00Z",
        "aliases": ["CVE-2026-9999"],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u999"}]}],
            }
        ],
        "database_specific": {"urgency": "high"},
    }
    env = {**stack.env, "FUNADE_HOME": str(tmp_path / "vulndata")}  # the data stays out of the stack's home
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("DSA-9999-1.json", json.dumps(advisory))
    assert stack.cli("vuln", "db", "import", str(archive), env=env).code == 0
    scanned = stack.cli("image", "scan", image, "--local", "-o", "json", env=env, timeout=300)
    assert scanned.code == 0, scanned.output
    report = json.loads(scanned.stdout)
    assert report["source"] == "engine" and report["distro"] == "debian-12"
    found = {f["package"]: f for f in report["findings"] if f["id"] == "DSA-9999-1"}
    assert {name: f["installed"] for name, f in found.items()} == from_glibc
    assert all(f["fixed"] == "2.36-9+deb12u999" and f["severity"] == "HIGH" for f in found.values())


def test_a_zstd_copy_of_the_image_has_the_same_sbom(stack: Funade, remote_sbom: dict[str, Any]) -> None:
    """The image's layers recompressed with zstd (OCI ``tar+zstd``, as BuildKit's ``compression=zstd`` writes
    them) and pushed as another tag to the real registry: the SBOM is the same, layer for layer."""
    registry = stack.env["FUNADE_REGISTRY"]
    name, _, tag = IMAGE.partition(":")

    async def push_zstd_copy() -> None:
        async with RegistryClient(registry) as client:
            manifest = await client.get_manifest(name, tag)
            assert manifest.config is not None
            layers = []
            for layer in manifest.layers:
                data = gzip.decompress(b"".join([chunk async for chunk in client.open_blob(name, layer.digest)]))
                packed = zstd.compress(data)
                digest = oci.digest_of(packed)
                await client.upload_blob(name, digest, len(packed), packed)
                layers.append({"mediaType": ZSTD_LAYER, "digest": digest, "size": len(packed)})
            config = {**manifest.config.to_json(), "mediaType": "application/vnd.oci.image.config.v1+json"}
            raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
            await client.put_manifest(name, f"{tag}-zstd", raw.encode(), OCI_MANIFEST)

    asyncio.run(push_zstd_copy())
    found = stack.cli("image", "sbom", f"{registry}/{IMAGE}-zstd", "--remote", "-o", "json", timeout=300)
    assert found.code == 0, found.output
    copy = json.loads(found.stdout)

    def comparable(sbom: dict[str, Any]) -> list[tuple[Any, ...]]:
        layers = sbom["layers"]
        return [(p["name"], p["version"], p["path"], layers.index(p["layer"])) for p in sbom["packages"]]

    assert len(copy["packages"]) >= 100 and comparable(copy) == comparable(remote_sbom)
    assert copy["digest"] != remote_sbom["digest"] and copy["distro"] == "debian-12"
