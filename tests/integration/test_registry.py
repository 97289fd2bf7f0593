"""The embedded registry: started by funade on loopback, real pushes, deletes enabled."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Funade, free_port

pytestmark = pytest.mark.integration

IMAGE = "funade-testapp:1.0.0"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[Funade, str]]:
    own = Funade(tmp_path / "home", f"127.0.0.1:{free_port()}", tmp_path)
    address = f"127.0.0.1:{free_port()}"
    own.env["FUNADE_REGISTRY"] = address
    try:
        yield own, address
    finally:
        own.cli("registry", "down", timeout=60)
        own.close()


def test_registry_up_push_delete_down(registry: tuple[Funade, str]) -> None:
    own, address = registry
    r = own.cli("registry", "up", "-o", "json", timeout=60)
    assert r.code == 0, r.output
    status = json.loads(r.stdout)
    assert status["running"] is True and status["address"] == address
    assert Path(status["storage"]).is_relative_to(own.home)
    # Idempotent: a second `up` finds it running.
    assert own.cli("registry", "up", "-o", "json", timeout=60).code == 0
    assert json.loads(own.cli("registry", "status", "-o", "json").stdout)["pid"] == status["pid"]

    ref = f"{address}/it/web:1.0.0"
    subprocess.run(["docker", "tag", IMAGE, ref], check=True, timeout=60)
    try:
        push = subprocess.run(["docker", "push", ref], capture_output=True, text=True, timeout=120, check=False)
        assert push.returncode == 0, push.stderr
        base = f"http://{address}/v2"
        assert httpx.get(f"{base}/_catalog", timeout=10).json() == {"repositories": ["it/web"]}
        head = httpx.head(
            f"{base}/it/web/manifests/1.0.0",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        digest = head.headers["Docker-Content-Digest"]
        # Deletes are enabled (lifecycle cleanup needs them).
        assert httpx.delete(f"{base}/it/web/manifests/{digest}", timeout=10).status_code == 202
        assert httpx.get(f"{base}/it/web/tags/list", timeout=10).json().get("tags") in (None, [])
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True, timeout=60, check=False)

    r = own.cli("registry", "down")
    assert r.code == 0 and "registry stopped" in r.stdout, r.output
    r = own.cli("registry", "status")
    assert r.code == 1 and "not running" in r.stdout, r.output


def test_registry_listens_on_loopback_only(registry: tuple[Funade, str]) -> None:
    own, _ = registry
    r = own.cli("registry", "up", "--address", "0.0.0.0:5999")
    assert r.code == 2 and "loopback only" in r.stderr, r.output


def test_funade_up_starts_the_registry_and_down_stops_it(tmp_path: Path) -> None:
    own = Funade(tmp_path / "home", f"127.0.0.1:{free_port()}", tmp_path)
    address = f"127.0.0.1:{free_port()}"
    own.env["FUNADE_REGISTRY"] = address
    try:
        own.up()
        assert httpx.get(f"http://{address}/v2/", timeout=5).status_code == 200
        r = own.cli("status", "-o", "json")
        assert json.loads(r.stdout)["registry"]["running"] is True, r.output
    finally:
        r = own.down()
        own.close()
    assert r.code == 0 and "registry stopped" in r.stdout, r.output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{address}/v2/", timeout=2)
