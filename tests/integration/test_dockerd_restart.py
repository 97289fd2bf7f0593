"""A restart of the Docker Engine is survived: the pods come back by themselves.

dockerd stops every container when it stops (funade sets no Docker restart policy: its
own kubelet restarts containers). When the Engine is back, funade restarts the pause
containers and the app containers, counts the restart as Kubernetes does after a node
reboot, and the Deployment is available again, with no duplicate or orphaned container.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import (
    Funade,
    container_status,
    docker_containers,
    is_ready,
    live,
    pod_ip,
    running_server,
    wait_until,
    waiting_reason,
)

pytestmark = pytest.mark.integration

IMAGE = "funade-testapp:1.0.0"


def _dockerd_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _engine_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30).returncode == 0


def _systemd_docker() -> bool:
    return bool(shutil.which("systemctl")) and (
        subprocess.run(["systemctl", "is-active", "--quiet", "docker"], check=False).returncode == 0
    )


def _stop_dockerd() -> bool:
    """Stop dockerd the way an upgrade or a crash does; True when systemd runs it."""
    if _systemd_docker():
        subprocess.run(["systemctl", "stop", "docker", "docker.socket"], check=True, timeout=120)
        return True
    pids = _dockerd_pids()
    assert pids, "no dockerd process to restart"
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _dockerd_pids(), 60, "dockerd to stop")
    return False


def _start_dockerd(systemd: bool) -> None:
    if systemd:
        subprocess.run(["systemctl", "start", "docker"], check=True, timeout=120)
    else:
        log = open("/var/log/funade-dockerd.log", "ab")  # noqa: SIM115 - handed to dockerd
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(_engine_answers, 90, "dockerd to answer again", interval=0.5)


def _deployment(replicas: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": IMAGE,
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting dockerd needs root")
def test_pods_come_back_after_dockerd_restarts(tmp_path: Path) -> None:
    own: Funade
    with running_server(tmp_path) as own:
        manifest = yaml.safe_dump_all(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "engine"}}, _deployment(2)]
        )
        r = own.cli("apply", "-f", "-", "-n", "engine", "--wait", "--timeout", "90", input=manifest)
        assert r.code == 0, r.output
        before = {p["metadata"]["uid"] for p in own.pods("engine")}
        assert len(before) == 2

        started = time.monotonic()
        reasons: set[str] = set()
        # Twice: a second restart must not find the containers in crash-loop back-off (they
        # stopped because the Engine did, which is not their fault).
        for restart in (1, 2):
            systemd = _stop_dockerd()
            try:
                # While the Engine is away, `funade status` says so and how to start it.
                def docker_reported_down() -> str:
                    r = own.cli("status", "-o", "json", timeout=30)
                    info = json.loads(r.stdout)
                    return "" if info["docker"]["ok"] else str(info["docker"]["error"])

                message = own.wait_until(docker_reported_down, 30, "funade status to report Docker down")
                assert "Docker Engine is not running" in message and "dockerd" in message, message
            finally:
                _start_dockerd(systemd)
            assert own.alive(), "the funade server must outlive a Docker restart"

            def available_again(restart: int = restart) -> bool:
                # Right after the Engine answers, funade may not have looked yet: wait for the
                # restarted containers (restartCount) to be ready, not for a stale "Ready".
                pods = live(own.pods("engine"))
                reasons.update(waiting_reason(p) for p in pods)
                return (
                    len(pods) == 2
                    and all(is_ready(p) and container_status(p).get("restartCount", 0) >= restart for p in pods)
                    and own.deployment("engine", "web")["status"].get("availableReplicas") == 2
                )

            wait_until(
                available_again,
                120,
                f"the deployment to be available again after restart {restart}",
                interval=0.05,
                detail=lambda: own.snapshot("engine") + "\n" + own.log_tail(60),
            )
        recovered = time.monotonic() - started
        assert "CrashLoopBackOff" not in reasons, reasons

        pods = live(own.pods("engine"))
        # The same pods came back (their sandboxes were restarted, not replaced) ...
        assert {p["metadata"]["uid"] for p in pods} == before
        for pod in pods:
            # ... and they serve again.
            assert httpx.get(f"http://{pod_ip(pod)}:8080/", timeout=5).text.startswith("version=1.0.0")

        # Docker holds one sandbox and one running app container per pod, and nothing else
        # running (the exited runs of before the restart are kept for `logs --previous`).
        found = docker_containers(own.instance)
        running = [c for c in found if c["state"] == "running"]
        assert sorted(c["role"] for c in running) == ["container", "container", "sandbox", "sandbox"], found
        assert {c["pod_uid"] for c in found} == before, found
        print(f"recovered from two Engine restarts in {recovered:.1f}s")
