"""Images in registries, end to end: push, push records, ls, promote by digest, immutability, cleanup.

A funade server of its own with its embedded registry (real distribution 2.8), the Docker
Engine for pushes and pods, and skopeo as an independent client checking that what
funade promotes reads back byte-identical.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import shutil
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.server import RegistryServer
from funade.core import oci
from tests.integration.conftest import Funade, ensure_test_images, free_port, running_server, wait_until
from tests.integration.test_registry_client import push_blob, push_image

pytestmark = pytest.mark.integration

V1, V2, V3 = "funade-testapp:1.0.0", "funade-testapp:2.0.0", "funade-testapp:root"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funade]:
    ensure_test_images()
    with running_server(tmp_path_factory.mktemp("images")) as server:
        yield server


def registry_of(stack: Funade) -> str:
    return stack.env["FUNADE_REGISTRY"]


def ok(stack: Funade, *args: str) -> Any:
    r = stack.cli(*args, timeout=180)
    assert r.code == 0, r.output
    machine = "-o" in args and args[args.index("-o") + 1] in ("json", "cyclonedx", "spdx", "sarif")
    return json.loads(r.stdout) if machine else r.stdout


def raw_manifest(ref: str) -> bytes:
    """The manifest bytes as skopeo (not funade) reads them."""
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: run `make setup`")
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pushed(stack: Funade, repository: str) -> dict[str, Any]:
    items = stack.get("/v1/registry/history", registry=registry_of(stack), repository=repository)["items"]
    return {item["digest"]: item for item in items}


@pytest.fixture(scope="module")
def web(stack: Funade) -> str:
    """it/web:1.0.0 pushed to the stack's registry; its digest."""
    subprocess.run(["docker", "tag", V1, "it/web:1.0.0"], check=True, timeout=60)
    result = ok(stack, "image", "push", "it/web:1.0.0", "-o", "json")
    assert result[0]["image"] == f"{registry_of(stack)}/it/web:1.0.0" and result[0]["pushed"] is True
    return str(result[0]["digest"])


def test_push_notifications_date_the_image_and_ls_shows_it(stack: Funade, web: str) -> None:
    record = wait_until(lambda: pushed(stack, "it/web").get(web), 30, "the registry's push notification")
    assert record["tags"] == ["1.0.0"]
    listing = ok(stack, "image", "ls", "it/web", "-o", "json")
    (image,) = listing["images"]
    assert image["digest"] == web and image["tags"] == ["1.0.0"]
    assert image["dateSource"] == "push" and image["pushedAt"] == record["pushedAt"]
    assert image["size"] > 0
    assert "it/web" in ok(stack, "image", "ls", "-o", "json")["repositories"]
    # Pushing the same image again is a no-op for the registry: the digest stays.
    assert ok(stack, "image", "push", "it/web:1.0.0", "-o", "json")[0]["digest"] == web


def test_promote_within_the_registry_mounts_blobs_and_keeps_the_bytes(stack: Funade, web: str) -> None:
    reg = registry_of(stack)
    result = ok(stack, "image", "promote", "it/web:1.0.0", "it/prod-web:1.0.0", "-o", "json")
    assert result["digest"] == web and result["verified"] is True
    assert result["bytesCopied"] == 0 and result["blobs"]["copied"] == 0 and result["blobs"]["mounted"] > 0
    assert raw_manifest(f"{reg}/it/prod-web:1.0.0") == raw_manifest(f"{reg}/it/web:1.0.0")
    # A retag in the same repository moves no blob at all.
    retag = ok(stack, "image", "promote", "it/web:1.0.0", "it/web:stable", "-o", "json")
    assert retag["blobs"] == {"skipped": 0, "mounted": 0, "copied": 0} and retag["digest"] == web


def test_promote_to_another_registry_streams_blobs_and_keeps_the_digest(
    stack: Funade, web: str, tmp_path: Path
) -> None:
    other = RegistryServer(tmp_path / "other", f"127.0.0.1:{free_port()}")
    other.up()
    try:
        reg = registry_of(stack)
        dst = f"{other.address}/team/web:1.0.0"
        result = ok(stack, "image", "promote", f"{reg}/it/web:1.0.0", dst, "-o", "json")
        assert result["digest"] == web and result["blobs"]["copied"] > 0 and result["bytesCopied"] > 0
        assert raw_manifest(dst) == raw_manifest(f"{reg}/it/web:1.0.0")
        assert digest(raw_manifest(dst)) == web
        # A second promotion finds every blob there.
        again = ok(stack, "image", "promote", f"{reg}/it/web:1.0.0", f"{other.address}/team/web:again", "-o", "json")
        assert again["blobs"]["copied"] == 0 and again["bytesCopied"] == 0
    finally:
        other.down()


def test_an_immutable_tag_is_never_moved(stack: Funade, web: str) -> None:
    reg = registry_of(stack)
    ok(stack, "image", "promote", "it/web:1.0.0", "it/release:1.0.0")
    ok(stack, "registry", "tag-mutability", "it/release", "IMMUTABLE_WITH_EXCLUSION", "--exclude", "latest")
    subprocess.run(["docker", "tag", V2, "it/web:2.0.0"], check=True, timeout=60)
    ok(stack, "image", "push", "it/web:2.0.0")
    r = stack.cli("image", "promote", "it/web:2.0.0", "it/release:1.0.0")
    assert r.code == 1 and "'1.0.0' already exists in the 'it/release' repository" in r.stderr, r.output
    subprocess.run(["docker", "tag", V2, f"{reg}/it/release:1.0.0"], check=True, timeout=60)
    r = stack.cli("image", "push", f"{reg}/it/release:1.0.0")
    assert r.code == 1 and "cannot be overwritten" in r.stderr, r.output
    assert digest(raw_manifest(f"{reg}/it/release:1.0.0")) == web
    # The same image again, and an excluded tag, are fine.
    ok(stack, "image", "promote", "it/web:1.0.0", "it/release:1.0.0")
    ok(stack, "image", "promote", "it/web:2.0.0", "it/release:latest")
    ok(stack, "image", "promote", "it/web:1.0.0", "it/release:latest")


def test_cleanup_spares_the_image_a_pod_runs_until_it_stops(stack: Funade) -> None:
    reg = registry_of(stack)
    subprocess.run(["docker", "tag", V2, "it/app:live"], check=True, timeout=60)
    first = ok(stack, "image", "push", "it/app:live", "-o", "json")[0]["digest"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pinned", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": f"{reg}/it/app:live", "imagePullPolicy": "Always"}]},
    }
    r = stack.apply("default", pod)
    assert r.code == 0, r.output
    stack.wait_until(
        lambda: (stack.find("Pod", "default", "pinned") or {}).get("status", {}).get("phase") == "Running",
        120,
        "the pod runs the registry's image",
        namespace="default",
    )
    # The tag moves on: the image the pod runs is now untagged.
    subprocess.run(["docker", "tag", V3, "it/app:live"], check=True, timeout=60)
    second = ok(stack, "image", "push", "it/app:live", "-o", "json")[0]["digest"]
    assert second != first
    wait_until(lambda: first in pushed(stack, "it/app") and second in pushed(stack, "it/app"), 30, "push records")
    args = ("registry", "cleanup", "apply", "it/app", "--delete-only-untagged-versions", "--min-versions-to-keep", "0")
    plan = ok(stack, *args, "-o", "json")["repositories"][0]
    assert plan["expired"] == [] and plan["deleted"] == []
    (kept,) = [d for d in plan["kept"] if d["digest"] == first]
    assert "in use by a running workload" in kept["reason"]

    assert stack.cli("delete", "pod", "pinned", "-n", "default").code == 0
    stack.wait_until(lambda: stack.find("Pod", "default", "pinned") is None, 120, "the pod is gone")
    wait_until(
        lambda: all("it/app" not in item["image"] for item in stack.get("/v1/images/in-use")["items"]),
        60,
        "no container runs it/app",
    )
    plan = ok(stack, *args, "-o", "json")["repositories"][0]
    assert [d["digest"] for d in plan["expired"]] == [first] and plan["deleted"] == [first]
    assert plan["freedBytes"] is not None and plan["freedBytes"] >= 0
    head = httpx.head(
        f"http://{reg}/v2/it/app/manifests/{first}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert head.status_code == 404
    assert digest(raw_manifest(f"{reg}/it/app:live")) == second  # the tagged image is untouched


def test_lifecycle_preview_on_the_live_registry_with_the_seed_policy(stack: Funade, web: str) -> None:
    policy = Path(__file__).resolve().parents[1] / "fixtures" / "ecr-lifecycle-policy.json"  # the seed's, as is
    plan = ok(stack, "registry", "lifecycle", "preview", "--policy", str(policy), "it/web", "-o", "json")
    (repo,) = plan["repositories"]
    assert repo["expired"] == []  # everything was pushed seconds ago
    assert {d["digest"] for d in repo["kept"]} >= {web}
    assert repo["pushRecords"] is True
    bad = stack.cli("registry", "lifecycle", "preview", "--policy", str(Path(__file__)), "it/web")
    assert bad.code == 2 and "invalid JSON" in bad.stderr


def test_promote_carries_every_platform_and_the_signature_across_registries(stack: Funade, tmp_path: Path) -> None:
    """A two-platform index with a cosign-style signature, pushed with funade's client, promoted with the CLI."""
    reg = registry_of(stack)
    other = RegistryServer(tmp_path / "other", f"127.0.0.1:{free_port()}")
    other.up()

    async def seed() -> tuple[oci.Manifest, list[oci.Manifest], str]:
        async with RegistryClient(reg) as client:
            amd = await push_image(client, "it/multi", None, [b"amd64 layer" * 100])
            arm = await push_image(client, "it/multi", None, [b"arm64 layer" * 100], arch="arm64")
            children = [
                oci.Descriptor(m.media_type, m.digest, m.size, platform=oci.Platform("linux", arch))
                for m, arch in ((amd, "amd64"), (arm, "arm64"))
            ]
            raw = oci.index_bytes(children)
            await client.put_manifest("it/multi", "1.0.0", raw, oci.OCI_INDEX)
            index = oci.parse_manifest(raw, oci.OCI_INDEX)
            empty = await push_blob(client, "it/multi", oci.EMPTY_JSON, oci.OCI_EMPTY)
            layer = await push_blob(client, "it/multi", b"signature", "application/octet-stream")
            body = {
                "schemaVersion": 2,
                "mediaType": oci.OCI_MANIFEST,
                "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                "config": empty.to_json(),
                "layers": [layer.to_json()],
                "subject": index.descriptor().to_json(),
            }
            sig = json.dumps(body).encode()
            sig_digest = await client.put_manifest("it/multi", oci.digest_of(sig), sig, oci.OCI_MANIFEST)
            return index, [amd, arm], sig_digest

    try:
        index, platforms, signature = asyncio.run(seed())
        dst = f"{other.address}/team/multi:1.0.0"
        result = ok(stack, "image", "promote", f"{reg}/it/multi:1.0.0", dst, "-o", "json")
        assert result["digest"] == index.digest and result["platforms"] == ["linux/amd64", "linux/arm64"]
        assert result["referrers"] == [signature]
        assert raw_manifest(dst) == index.raw
        for child in platforms:
            assert raw_manifest(f"{other.address}/team/multi@{child.digest}") == child.raw

        async def referrers() -> list[str]:
            async with RegistryClient(other.address) as client:
                return [d.digest for d in await client.referrers("team/multi", index.digest)]

        assert asyncio.run(referrers()) == [signature]
    finally:
        other.down()


DPKG_STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""


@pytest.fixture(scope="module")
def sbom_image(stack: Funade, tmp_path_factory: pytest.TempPathFactory) -> str:
    """it/sbom:1.0.0, built FROM scratch with a dpkg database, os-release and a Python distribution, pushed."""
    context = tmp_path_factory.mktemp("sbom")
    (context / "var/lib/dpkg").mkdir(parents=True)
    (context / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (context / "etc").mkdir()
    (context / "etc/os-release").write_text(
        'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    )
    meta = context / "usr/lib/python3/dist-packages/requests-2.28.1.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY etc /etc\nCOPY var /var\nCOPY usr /usr\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", "it/sbom:1.0.0", str(context)], check=True, timeout=120, capture_output=True
    )
    ok(stack, "image", "push", "it/sbom:1.0.0")
    return "it/sbom:1.0.0"


def test_sbom_of_a_pushed_image_lists_its_packages_by_layer(stack: Funade, sbom_image: str) -> None:
    """Read from the registry without a pull (``--remote``: the engine has the build too), each package by layer."""
    found = ok(stack, "image", "sbom", "it/sbom:1.0.0", "--remote", "-o", "json")
    packages = {p["name"]: p for p in found["packages"]}
    assert set(packages) == {"libc6", "bash", "requests"}  # the deinstalled package is not listed
    assert packages["libc6"]["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    assert packages["libc6"]["source"] == "glibc"
    assert packages["requests"]["purl"] == "pkg:pypi/requests@2.28.1"
    assert packages["libc6"]["layer"] != packages["requests"]["layer"]  # each from the layer that brought it
    cyclonedx = ok(stack, "image", "sbom", "it/sbom:1.0.0", "--remote", "-o", "cyclonedx")
    assert cyclonedx["bomFormat"] == "CycloneDX"
    libraries = [c for c in cyclonedx["components"] if c["type"] == "library"]
    assert len(libraries) == 3 and any(c["type"] == "operating-system" for c in cyclonedx["components"])
    spdx = ok(stack, "image", "sbom", "it/sbom:1.0.0", "--remote", "-o", "spdx")
    assert spdx["spdxVersion"] == "SPDX-2.3"


@pytest.fixture(scope="module")
def osv_data(stack: Funade, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two advisories against the SBOM test image's packages, imported from an OSV zip."""
    tmp_path = tmp_path_factory.mktemp("osv")
    advisories = [
        {
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
            "database_specific": {"urgency": "high"},
        },
        {
            "id": "GHSA-test-0001",
            "modified": "2026-11-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "requests"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.31.0"}]}],
                }
            ],
            "database_specific": {"severity": "MODERATE"},
        },
    ]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for a in advisories:
            zf.writestr(f"{a['id']}.json", json.dumps(a))
    ok(stack, "vuln", "db", "import", str(archive))


def test_scan_finds_the_advisories_of_a_pushed_image_and_gates_on_them(
    stack: Funade, sbom_image: str, osv_data: None, tmp_path: Path
) -> None:
    """The image of the SBOM test scanned from the registry against the imported advisories."""
    report = ok(stack, "image", "scan", "it/sbom:1.0.0", "--remote", "-o", "json")
    found = {f["id"]: f for f in report["findings"]}
    assert set(found) == {"DSA-9999-1", "GHSA-test-0001"}
    assert (found["DSA-9999-1"]["package"], found["DSA-9999-1"]["fixed"], found["DSA-9999-1"]["severity"]) == (
        "libc6",
        "2.36-9+deb12u7",
        "HIGH",
    )
    assert found["GHSA-test-0001"]["severity"] == "MEDIUM"
    # The gate: HIGH and above fail the pipeline; an accepted CVE (by alias) passes it.
    gate = stack.cli(
        "image", "scan", "it/sbom:1.0.0", "--remote", "--severity", "CRITICAL,HIGH", "--exit-code", "3", timeout=120
    )
    assert gate.code == 3 and "DSA-9999-1" in gate.stdout, gate.output
    ignorefile = tmp_path / ".trivyignore"
    ignorefile.write_text("CVE-2026-9999  # accepted until the rebuild\n")
    accepted = stack.cli(
        "image",
        "scan",
        "it/sbom:1.0.0",
        "--remote",
        "--severity",
        "CRITICAL,HIGH",
        "--exit-code",
        "3",
        "--ignorefile",
        str(ignorefile),
        timeout=120,
    )
    assert accepted.code == 0 and "1 ignored" in accepted.stdout, accepted.output
    sarif = ok(stack, "image", "scan", "it/sbom:1.0.0", "--remote", "-o", "sarif")
    assert sarif["version"] == "2.1.0" and {r["ruleId"] for r in sarif["runs"][0]["results"]} == set(found)


def test_a_push_is_scanned_by_the_server_and_cached(
    stack: Funade, sbom_image: str, osv_data: None, tmp_path: Path
) -> None:
    """With vulnerability data present, the registry's push notification makes the server scan the image."""
    context = tmp_path / "ctx"
    (context / "etc").mkdir(parents=True)
    (context / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (context / "var/lib/dpkg").mkdir(parents=True)
    (context / "var/lib/dpkg/status").write_text(DPKG_STATUS.replace("2.36-9+deb12u4", "2.36-9+deb12u3"))
    (context / "Dockerfile").write_text("FROM scratch\nCOPY etc /etc\nCOPY var /var\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", "it/sbom:2.0.0", str(context)], check=True, timeout=120, capture_output=True
    )
    ok(stack, "image", "push", "it/sbom:2.0.0")

    def cached() -> dict[str, Any] | None:
        r = stack.cli("image", "scan", "it/sbom:2.0.0", "--cached", "-o", "json", timeout=60)
        return json.loads(r.stdout) if r.code == 0 else None

    result = wait_until(cached, 60, "the server's scan on push")
    assert result["cached"] is True
    (finding,) = [f for f in result["findings"] if f["id"] == "DSA-9999-1"]
    assert finding["installed"] == "2.36-9+deb12u3"

    # it/sbom:1.0.0 was pushed before there was any data: the import made the server scan it too.
    def earlier() -> dict[str, Any] | None:
        r = stack.cli("image", "scan", sbom_image, "--cached", "-o", "json", timeout=60)
        return json.loads(r.stdout) if r.code == 0 else None

    assert {f["id"] for f in wait_until(earlier, 30, "the rescan after the import")["findings"]} >= {"DSA-9999-1"}


def test_the_gate_refuses_a_vulnerable_or_unscanned_image_and_records_an_override(
    stack: Funade, sbom_image: str, osv_data: None
) -> None:
    reg = registry_of(stack)
    gated = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "it-gated", "annotations": {"funade.io/scan-gate": "HIGH"}},
    }
    assert stack.apply("default", gated).code == 0

    def pod(image: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app", "image": image, "command": ["/bin/true"]}]},
        }

    wait_until(
        lambda: stack.cli("image", "scan", sbom_image, "--cached", "-o", "json", timeout=60).code == 0,
        60,
        "the server has scanned the image",
    )
    refused = stack.apply("it-gated", pod(f"{reg}/{sbom_image}"))
    assert refused.code != 0 and "refused by the gate of namespace it-gated" in refused.stderr, refused.output
    assert "DSA-9999-1" in refused.stderr and stack.find("Pod", "it-gated", "web") is None
    unscanned = stack.apply("it-gated", pod("funade-testapp:1.0.0"))
    assert unscanned.code != 0 and "has no scan result" in unscanned.stderr, unscanned.output
    forced = stack.apply("it-gated", pod(f"{reg}/{sbom_image}"), args=("--force-gate", "hotfix approved by ops"))
    assert forced.code == 0, forced.output
    assert stack.find("Pod", "it-gated", "web") is not None
    (event,) = [e for e in stack.events("it-gated") if e["reason"] == "GateOverridden"]
    assert "hotfix approved by ops" in event["message"] and "DSA-9999-1" in event["message"]
    # An object can carry its own override (as a reviewed commit synced by GitOps would): that object only.
    excused = pod(f"{reg}/{sbom_image}")
    excused["metadata"].update(name="excused", annotations={"funade.io/gate-override": "accepted risk, OPS-42"})
    refused_pair = stack.apply("it-gated", excused, pod("funade-testapp:1.0.0"))
    assert refused_pair.code != 0 and "Pod/web: image funade-testapp:1.0.0 has no scan" in refused_pair.stderr
    assert "Pod/excused" not in refused_pair.stderr and stack.find("Pod", "it-gated", "excused") is None
    assert stack.apply("it-gated", excused).code == 0
    assert stack.cli("delete", "namespace", "it-gated", timeout=60).code == 0
    # The audit log outlives the namespace and its events, and names who overrode what and why.
    audit = stack.cli("audit", "-n", "it-gated", "-o", "json")
    assert audit.code == 0, audit.output
    flag, annotation = [e for e in json.loads(audit.stdout) if e["action"] == "gate-override"]
    assert flag["reason"] == "--force-gate: hotfix approved by ops" and flag["objects"] == ["Pod/web"]
    assert flag["actor"] == f"{getpass.getuser()}@{socket.gethostname()}" and flag["action"] == "gate-override"
    assert any("DSA-9999-1" in d for d in flag["details"])
    assert annotation["reason"] == "funade.io/gate-override on Pod/excused: accepted risk, OPS-42"
    assert annotation["objects"] == ["Pod/excused"]
    table = stack.cli("audit")
    assert table.code == 0 and "accepted risk, OPS-42" in table.stdout, table.output
