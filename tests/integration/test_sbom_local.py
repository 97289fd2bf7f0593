"""SBOM and scan of images in the local Docker Engine (``docker save``), beside the registry path.

Each image is pushed to a funade server's embedded registry and catalogued both ways:
``funade image sbom NAME`` reads the engine's copy (the engine has the name),
``--remote`` (or a reference naming the registry) the pushed one. The two must list the
same packages from the same layers; only the layer digests differ (the engine names a
layer by its uncompressed digest, the registry by its compressed blob), and the image's
digest is the engine's image ID, as ``docker inspect`` says.

Images: ``funade-testapp:1.0.0`` (FROM scratch: busybox and a static C binary, no package
metadata, so no packages either way) and ``it/sbom-local:1.0``, built on it with a dpkg
database, Python distributions, an npm package and a ``RUN rm`` that leaves a whiteout.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Funade, ensure_test_images, running_server
from tests.integration.test_image_registry import DPKG_STATUS, ok

pytestmark = pytest.mark.integration

TESTAPP = "funade-testapp:1.0.0"
LAYERED = "it/sbom-local:1.0"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funade]:
    ensure_test_images()
    with running_server(tmp_path_factory.mktemp("sbom-local")) as server:
        yield server


def docker_inspect(image: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout)[0])


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``it/sbom-local:1.0``: the test app plus package metadata in three layers, one removing a distribution."""
    context = tmp_path_factory.mktemp("layered")
    (context / "var/lib/dpkg").mkdir(parents=True)
    (context / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (context / "etc").mkdir()
    (context / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    site = context / "usr/lib/python3/dist-packages"
    for name, version in (("requests", "2.28.1"), ("six", "1.16.0")):
        (site / f"{name}-{version}.dist-info").mkdir(parents=True)
        (site / f"{name}-{version}.dist-info/METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
    (context / "app/node_modules/express").mkdir(parents=True)
    (context / "app/node_modules/express/package.json").write_text('{"name": "express", "version": "4.18.2"}')
    (context / "Dockerfile").write_text(
        f"FROM {TESTAPP}\nUSER 0\nCOPY etc /etc\nCOPY var /var\nCOPY usr /usr\nCOPY app /app\n"
        "RUN rm -r /usr/lib/python3/dist-packages/six-1.16.0.dist-info\nUSER 10001\n"
    )
    subprocess.run(["docker", "build", "-q", "-t", LAYERED, str(context)], check=True, timeout=180, capture_output=True)
    yield LAYERED
    subprocess.run(["docker", "rmi", LAYERED], capture_output=True, check=False, timeout=60)


@pytest.fixture(scope="module")
def pushed(stack: Funade, layered: str) -> Iterator[list[str]]:
    """Both images pushed to the stack's registry (and the REGISTRY/NAME tags the push made, removed after)."""
    names: list[str] = []
    try:
        for image in (TESTAPP, layered):
            (record,) = ok(stack, "image", "push", image, "-o", "json")
            names.append(record["image"])
        yield names
    finally:
        for name in names:
            subprocess.run(["docker", "rmi", name], capture_output=True, check=False, timeout=60)


def comparable(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    layers = found["layers"]
    return [
        (p["type"], p["name"], p["version"], p["purl"], p["path"], layers.index(p["layer"])) for p in found["packages"]
    ]


@pytest.mark.parametrize("image", [TESTAPP, LAYERED])
def test_the_engine_and_the_registry_list_the_same_packages(stack: Funade, pushed: list[str], image: str) -> None:
    local = ok(stack, "image", "sbom", image, "-o", "json")
    remote = ok(stack, "image", "sbom", image, "--remote", "-o", "json")
    assert (local["source"], remote["source"]) == ("engine", "registry")
    assert local["image"] == image and remote["image"] == f"{stack.env['FUNADE_REGISTRY']}/{image}"
    assert comparable(local) == comparable(remote)
    assert local["platform"] == remote["platform"] == "linux/amd64" and local["distro"] == remote["distro"]
    # What `docker save` holds: the image ID (the config's digest) and the layers' uncompressed digests.
    inspected = docker_inspect(image)
    assert local["digest"] == inspected["Id"] and local["layers"] == inspected["RootFS"]["Layers"]
    assert remote["digest"] != local["digest"] and len(remote["layers"]) == len(local["layers"])
    # A reference naming the registry reads the registry, though the engine has that name too (the push tagged it).
    named = ok(stack, "image", "sbom", f"{stack.env['FUNADE_REGISTRY']}/{image}", "-o", "json")
    assert named["source"] == "registry" and named["digest"] == remote["digest"]


def test_the_layered_image_from_the_engine(stack: Funade, pushed: list[str]) -> None:
    found = ok(stack, "image", "sbom", LAYERED, "--local", "-o", "json")
    packages = {p["name"]: p for p in found["packages"]}
    assert set(packages) == {
        "libc6",
        "bash",
        "requests",
        "express",
    }  # six: removed by a later layer; `gone`: deinstalled
    assert packages["libc6"]["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    layers = found["layers"]
    # COPY etc, COPY var, COPY usr, COPY app, RUN rm: each package from the layer that wrote it.
    assert layers.index(packages["libc6"]["layer"]) < layers.index(packages["requests"]["layer"])
    assert layers.index(packages["requests"]["layer"]) < layers.index(packages["express"]["layer"])
    table = stack.cli("image", "sbom", LAYERED, timeout=120)
    assert table.code == 0 and f"{LAYERED} (local engine)" in table.stdout, table.output
    missing = stack.cli("image", "sbom", "it/never-built:1.0", "--local", timeout=60)
    assert missing.code == 1 and "the local Docker Engine has no image it/never-built:1.0" in missing.stderr


def test_a_never_pushed_image_is_scanned_from_the_engine_as_cyclonedx(
    stack: Funade, layered: str, tmp_path: Path
) -> None:
    advisory = {
        "id": "DSA-9999-1",
        "modified": "2026-11-01T00:00:00Z",
        "aliases": ["CVE-2026-9999"],
        "summary": "glibc: a test advisory",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u7"}]}],
            }
        ],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    }
    home = tmp_path / "vulndata"  # a home of its own: the data never meets the other modules' scans
    env = {**stack.env, "FUNADE_HOME": str(home)}
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("DSA-9999-1.json", json.dumps(advisory))
    assert stack.cli("vuln", "db", "import", str(archive), env=env).code == 0
    subprocess.run(["docker", "tag", layered, "it/sbom-local:unpushed"], check=True, timeout=60)
    try:
        report = stack.cli("image", "scan", "it/sbom-local:unpushed", "-o", "json", env=env, timeout=300)
        assert report.code == 0, report.output
        result = json.loads(report.stdout)
        assert result["source"] == "engine" and [f["id"] for f in result["findings"]] == ["DSA-9999-1"]
        bom = stack.cli("image", "scan", "it/sbom-local:unpushed", "-o", "cyclonedx", env=env, timeout=300)
        assert bom.code == 0, bom.output
        document = json.loads(bom.stdout)
    finally:
        subprocess.run(["docker", "rmi", "it/sbom-local:unpushed"], capture_output=True, check=False, timeout=60)
    assert document["specVersion"] == "1.5" and document["metadata"]["component"]["name"] == "it/sbom-local:unpushed"
    refs = {c["bom-ref"]: c for c in document["components"]}
    (vulnerability,) = document["vulnerabilities"]
    assert vulnerability["id"] == "DSA-9999-1" and vulnerability["source"]["name"] == "OSV"
    assert [refs[a["ref"]]["name"] for a in vulnerability["affects"]] == ["libc6"]
    assert vulnerability["ratings"][0]["method"] == "CVSSv31" and vulnerability["ratings"][0]["score"] == 9.8
    assert vulnerability["recommendation"] == "Upgrade libc6 to 2.36-9+deb12u7."
    assert vulnerability["references"][0]["id"] == "CVE-2026-9999"
