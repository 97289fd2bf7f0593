"""The pod template on the local target, field by field, checked on the real containers.

Init containers, shared emptyDir, configMap and secret volumes, env from fieldRef and
$(VAR) expansion, exec and tcpSocket probes, limits and securityContext as Docker runs
them; then the commands people read pods with (logs, describe, get -o yaml) and graceful
termination (preStop before SIGTERM).
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import (
    APP_PORT,
    Funade,
    container_status,
    docker_containers,
    docker_inspect,
    funade_executable,
    is_ready,
    live,
    pod_ip,
)

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
IMAGE = "funade-testapp:1.0.0"


def _background(funade: Funade, *args: str) -> tuple[subprocess.Popen[str], threading.Thread, list[str]]:
    """A `funade` command left running, its output lines collected as they come."""
    process = subprocess.Popen(
        [funade_executable(), *args], env=funade.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    return process, reader, lines


def _app_container(funade: Funade, pod: Obj, name: str = "app") -> Obj:
    uid = pod["metadata"]["uid"]
    (found,) = [
        c
        for c in docker_containers(funade.instance)
        if c["pod_uid"] == uid and c["container"] == name and c["state"] == "running"
    ]
    return docker_inspect(found["id"])


def _ready_pod(funade: Funade, ns: str, selector: str) -> Obj:
    def one_ready() -> Obj | None:
        pods = [p for p in live(funade.pods(ns, selector)) if is_ready(p)]
        return pods[0] if len(pods) == 1 else None

    return funade.wait_until(one_ready, 60, f"one ready pod for {selector}", namespace=ns)


def test_pod_template_fields_reach_the_containers(funade: Funade, ns: str) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"greeting": "hallo"}}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sec"},
        "stringData": {"token": "s3cr3t"},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "feat"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "feat"}},
            "template": {
                "metadata": {"labels": {"app": "feat"}},
                "spec": {
                    # fsGroup makes the 0400 secret file readable to the pod's group, as in Kubernetes.
                    "securityContext": {"runAsUser": 2000, "runAsGroup": 3000, "runAsNonRoot": True, "fsGroup": 3000},
                    "initContainers": [
                        {
                            "name": "prepare",
                            "image": IMAGE,
                            "command": ["/bin/sh", "-c", "echo init-ran-as-$(id -u) > /work/marker"],
                            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "app",
                            "image": IMAGE,
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                {
                                    "name": "APP_LABEL",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}},
                                },
                                {
                                    "name": "GREETING",
                                    "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                                },
                                {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME), $$(kept)"},
                            ],
                            "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "readinessProbe": {"exec": {"command": ["cat", "/work/marker"]}, "periodSeconds": 1},
                            "livenessProbe": {"tcpSocket": {"port": APP_PORT}, "periodSeconds": 1},
                            "volumeMounts": [
                                {"name": "work", "mountPath": "/work"},
                                {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                                {"name": "sec", "mountPath": "/etc/sec", "readOnly": True},
                                {"name": "cache", "mountPath": "/cache"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "work", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                        {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                    ],
                },
            },
        },
    }
    r = funade.apply(ns, config, secret, deployment, args=["--wait", "--timeout", "90"])
    assert r.code == 0, r.output + funade.snapshot(ns)
    pod = _ready_pod(funade, ns, "app=feat")
    base = f"http://{pod_ip(pod)}:{APP_PORT}"

    def get(endpoint: str, **params: str) -> str:
        response = httpx.get(base + endpoint, params=params, timeout=5)
        assert response.status_code == 200, (endpoint, params, response.text)
        return response.text.strip()

    # The init container ran first, as the pod's user, into the emptyDir the app shares.
    assert get("/file", path="/work/marker") == "init-ran-as-2000"
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    # Environment: fieldRef, configMapKeyRef and $(VAR) expansion ($$ escapes).
    assert get("/env", name="POD_NAME") == pod["metadata"]["name"]
    assert get("/env", name="POD_IP") == pod_ip(pod)
    assert get("/env", name="APP_LABEL") == "feat"
    assert get("/env", name="MESSAGE") == f"hallo from {pod['metadata']['name']}, $(kept)"
    # configMap and secret volumes hold their keys as files.
    assert get("/file", path="/etc/cfg/greeting") == "hallo"
    assert get("/file", path="/etc/sec/token") == "s3cr3t"

    # What Docker runs: user, limits, security options, the memory-backed emptyDir.
    info = _app_container(funade, pod)
    host = info["HostConfig"]
    assert info["Config"]["User"] == "2000:3000"
    assert host["GroupAdd"] == ["3000"]  # fsGroup
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 250_000_000
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    df = subprocess.run(
        ["docker", "exec", info["Id"], "df", "-k", "/cache"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert "tmpfs" in df and " 8192 " in df, df
    # The read-only root really is read-only; the emptyDir is writable.
    write = subprocess.run(
        ["docker", "exec", info["Id"], "sh", "-c", "touch /nope; touch /work/yes && echo ok"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert "Read-only file system" in write.stderr and write.stdout.strip() == "ok", write


def test_logs_describe_and_structured_output(funade: Funade, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker", "labels": {"app": "talker"}},
        "spec": {
            "containers": [
                {"name": "app", "image": IMAGE, "env": [{"name": "CRASH_AFTER", "value": "1"}]},
            ]
        },
    }
    r = funade.apply(ns, pod)
    assert r.code == 0, r.output

    def restarted() -> Obj | None:
        found = funade.find("Pod", ns, "talker")
        return found if found and container_status(found).get("restartCount", 0) >= 1 else None

    funade.wait_until(restarted, 60, "the container to crash and restart", namespace=ns)

    r = funade.cli("logs", "talker", "-n", ns)
    assert r.code == 0 and "testapp: listening" in r.stdout, r.output
    r = funade.cli("logs", "talker", "-n", ns, "--previous")
    assert r.code == 0 and "crashing as asked (CRASH_AFTER=1)" in r.stdout, r.output
    r = funade.cli("logs", "-l", "app=talker", "-n", ns, "--tail", "1")
    assert r.code == 0 and len(r.stdout.strip().splitlines()) == 1, r.output  # one pod: no prefix, one line

    r = funade.cli("describe", "pod", "talker", "-n", ns)
    assert r.code == 0, r.output
    assert "Last state: terminated (Error), exit code 1" in r.stdout, r.stdout
    assert "Scheduled" in r.stdout and "Started" in r.stdout, r.stdout

    r = funade.cli("get", "pod", "talker", "-n", ns, "-o", "yaml")
    assert r.code == 0, r.output
    as_yaml = yaml.safe_load(r.stdout)
    assert as_yaml["kind"] == "Pod" and as_yaml["status"]["containerStatuses"][0]["restartCount"] >= 1
    r = funade.cli("get", "pods", "-n", ns, "-o", "json")
    assert r.code == 0 and '"kind": "List"' in r.stdout, r.output

    r = funade.cli("logs", "nobody", "-n", ns)
    assert r.code != 0 and 'pods "nobody" not found' in r.stderr, r.output


def test_termination_runs_prestop_before_sigterm(funade: Funade, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "graceful"},
        "spec": {
            "terminationGracePeriodSeconds": 20,
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": APP_PORT}, "periodSeconds": 1},
                    "lifecycle": {
                        "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo prestop-ran > /proc/1/fd/1"]}}
                    },
                }
            ],
        },
    }
    r = funade.apply(ns, pod)
    assert r.code == 0, r.output
    funade.wait_until(lambda: is_ready(funade.pod(ns, "graceful")), 60, "the pod to be ready", namespace=ns)

    # Follow the logs while the pod is deleted: the stream ends when the container stops.
    follower, reader, lines = _background(funade, "logs", "graceful", "-n", ns, "-f")
    funade.wait_until(lambda: any("listening" in line for line in lines), 30, "the log stream to start")

    r = funade.cli("delete", "pod", "graceful", "-n", ns)
    assert r.code == 0, r.output
    follower.wait(timeout=60)
    reader.join(timeout=10)
    text = "".join(lines)
    assert "prestop-ran" in text and "shutting down" in text, text
    assert text.index("prestop-ran") < text.index("shutting down"), text
    assert funade.find("Pod", ns, "graceful") is None


def test_exec_runs_commands_in_the_pods_container(funade: Funade, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "shell"},
        "spec": {
            "securityContext": {"runAsUser": 4321},
            "containers": [{"name": "app", "image": IMAGE, "env": [{"name": "GREETING", "value": "moin"}]}],
        },
    }
    r = funade.apply(ns, pod)
    assert r.code == 0, r.output
    funade.wait_until(
        lambda: "running" in container_status(funade.pod(ns, "shell")).get("state", {}),
        60,
        "the container to run",
        namespace=ns,
    )
    r = funade.cli("exec", "shell", "-n", ns, "--", "sh", "-c", "echo $GREETING $(id -u)")
    assert (r.code, r.stdout.strip()) == (0, "moin 4321"), r.output
    r = funade.cli("exec", "shell", "-n", ns, "--", "sh", "-c", "exit 3")
    assert r.code == 3, r.output  # the command's exit code is the CLI's
    r = funade.cli("exec", "shell", "-n", ns, "-c", "nope", "--", "true")
    assert r.code != 0 and "container nope is not valid for pod shell" in r.stderr, r.output


def test_get_watch_shows_changes_as_they_happen(funade: Funade, ns: str) -> None:
    watcher, reader, lines = _background(funade, "get", "pods", "-n", ns, "-w")
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "watched"},
            "spec": {"containers": [{"name": "app", "image": IMAGE}]},
        }
        r = funade.apply(ns, pod)
        assert r.code == 0, r.output
        funade.wait_until(
            lambda: any(line.split()[:3] == ["watched", "1/1", "Running"] for line in lines if line.strip()),
            60,
            "the watch to show the pod running",
        )
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
        reader.join(timeout=10)
